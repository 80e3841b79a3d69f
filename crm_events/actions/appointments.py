"""Appointments: a visit booked, moved, confirmed, cancelled or completed, each state carded
once per visit (and per start time, for a move or a confirmation); and the customer asking
for another time.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import (
    appointment_url,
    appointment_when,
    check_project,
    post_card,
)
from crm_events.models import Appointment
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ValidationError("Times need a UTC offset.", code="naive_time")
    if ends_at <= starts_at:
        raise ValidationError("An appointment must end after it starts.", code="ends_before_start")
    if ends_at - starts_at > dt.timedelta(days=31):
        raise ValidationError("An appointment cannot last over a month.", code="too_long")


@transaction.atomic
def schedule_appointment(
    *,
    customer: Customer,
    title: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    project: Project | None = None,
    crew_note: str = "",
    external_id: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Appointment:
    """Book a visit and card it (telling the customer unless `notify` is False: history,
    the demo). With the CRM's id, booking it again changes nothing; the same id with other
    times is a reschedule, which has its own event."""
    check_project(customer=customer, project=project)
    _check_times(starts_at, ends_at)
    title = title.strip()
    if not title:
        raise ValidationError("An appointment needs a title.", code="bad_title")
    appointment = None
    if external_id:
        appointment = (
            Appointment.objects.select_for_update().filter(external_id=external_id).first()
        )
    if appointment is not None:
        same = (
            appointment.customer_id == customer.pk
            and appointment.starts_at == starts_at
            and appointment.ends_at == ends_at
            and appointment.title == title
        )
        if not same:
            raise ValidationError(
                "Appointment %(id)s is already booked for other times; send "
                "appointment.rescheduled to move it.",
                code="conflict",
                params={"id": external_id},
            )
    else:
        appointment = Appointment.objects.create(
            customer=customer,
            project=project,
            title=title,
            starts_at=starts_at,
            ends_at=ends_at,
            crew_note=crew_note.strip(),
            external_id=external_id,
        )
    appointment_changed(appointment=appointment, at=at, notify=notify)
    return appointment


def find_appointment(*, customer: Customer, external_id: str) -> Appointment:
    appointment = Appointment.objects.filter(customer=customer, external_id=external_id).first()
    if appointment is None:
        raise ValidationError(
            "This customer has no appointment %(id)s.",
            code="unknown_record",
            params={"id": external_id},
        )
    return appointment


@transaction.atomic
def reschedule_appointment(
    *,
    appointment: Appointment,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    at: dt.datetime | None = None,
) -> Appointment:
    """Move a visit; it needs confirming again, and gets another reminder."""
    _check_times(starts_at, ends_at)
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if not locked.is_open:
        raise ValidationError(
            "That appointment is %(s)s.",
            code="bad_transition",
            params={"s": locked.get_status_display().lower()},
        )
    if (locked.starts_at, locked.ends_at) != (starts_at, ends_at):
        locked.starts_at, locked.ends_at = starts_at, ends_at
        locked.status = Appointment.Status.RESCHEDULED
        locked.confirmed_at = None
        locked.save(update_fields=["starts_at", "ends_at", "status", "confirmed_at", "updated_at"])
    appointment_changed(appointment=locked, at=at)
    return locked


@transaction.atomic
def set_appointment_status(
    *, appointment: Appointment, status: str, at: dt.datetime | None = None
) -> Appointment:
    """Cancel or complete a visit (once; again changes nothing)."""
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if locked.status != status:
        if not locked.is_open:
            raise ValidationError(
                "That appointment is %(s)s already.",
                code="bad_transition",
                params={"s": locked.get_status_display().lower()},
            )
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    appointment_changed(appointment=locked, at=at)
    return locked


@transaction.atomic
def confirm_appointment(
    *, appointment: Appointment, at: dt.datetime | None = None, notify: bool = False
) -> Appointment:
    """The customer confirms a visit (Schedule button, or CONFIRM by SMS or reply). The card
    tells the customer only when `notify` (an SMS CONFIRM gets its answer by SMS)."""
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if locked.status in (Appointment.Status.CANCELLED, Appointment.Status.COMPLETED):
        raise ValidationError(
            "That appointment is %(s)s.",
            code="bad_transition",
            params={"s": locked.get_status_display().lower()},
        )
    if locked.status != Appointment.Status.CONFIRMED:
        locked.status = Appointment.Status.CONFIRMED
        locked.confirmed_at = at or timezone.now()
        locked.save(update_fields=["status", "confirmed_at", "updated_at"])
    appointment_changed(appointment=locked, at=at, notify=notify)
    return locked


def _stamp(value: dt.datetime) -> int:
    return int(value.timestamp())


@transaction.atomic
def appointment_changed(
    *, appointment: Appointment, at: dt.datetime | None = None, notify: bool = True
) -> Entry:
    """Card the visit's current state, once per visit, state and start time."""
    when = appointment_when(appointment)
    common = {
        "customer": appointment.customer,
        "card_kind": CardKind.APPOINTMENT,
        "link_url": appointment_url(appointment),
        "project": appointment.project,
        "at": at,
    }
    # Every visit was scheduled first: that card comes before any later one, and tells the
    # customer unless it is the state being carded without notifying.
    status = appointment.status
    scheduled = post_card(
        **common,
        title=f"Appointment scheduled — {when}",
        key=f"crm:appointment:{appointment.pk}:scheduled",
        notify=notify or status != Appointment.Status.SCHEDULED,
    )
    stamp = _stamp(appointment.starts_at)
    if status == Appointment.Status.SCHEDULED:
        return scheduled
    if status == Appointment.Status.RESCHEDULED:
        title = f"Appointment rescheduled to {when}"
        key = f"crm:appointment:{appointment.pk}:rescheduled:{stamp}"
    elif status == Appointment.Status.CONFIRMED:
        title = f"Appointment confirmed — {when}"
        key = f"crm:appointment:{appointment.pk}:confirmed:{stamp}"
    elif status == Appointment.Status.CANCELLED:
        title = f"Appointment cancelled — {when}"
        key = f"crm:appointment:{appointment.pk}:cancelled"
    else:
        title = f"Appointment completed — {appointment.title}"
        key = f"crm:appointment:{appointment.pk}:completed"
    return post_card(**common, title=title, key=key, notify=notify)


def ask_to_reschedule(*, appointment: Appointment, note: str = "", idempotency_key: str) -> Entry:
    """The customer asks for another time: a message to the business, about that visit."""
    if not appointment.is_open:
        raise ValidationError("That appointment is not coming up.", code="bad_transition")
    body = f"Could we reschedule {appointment.title} ({appointment_when(appointment)})?"
    if note.strip():
        body = f"{body} {note.strip()}"
    return thread_actions.post_customer_reply(
        customer=appointment.customer,
        body=body,
        channel=Entry.Channel.PORTAL,
        project=appointment.project,
        idempotency_key=idempotency_key,
    )
