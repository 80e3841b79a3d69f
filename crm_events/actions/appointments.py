"""Appointments: a visit booked, moved, confirmed, cancelled or completed, each state carded
once per visit (and per start time, for a move or a confirmation); and the customer asking
for another time.

`transition_appointment` is the only writer of `Appointment.status` (and of the times of a
booked visit: moving one is a reschedule, with its own rules), and of its `calendar_sequence`.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import (
    Transition,
    appointment_url,
    appointment_when,
    check_project,
    check_transition,
    post_card,
)
from crm_events.models import Appointment
from crm_events.outbound import events as outbound
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind
Status = Appointment.Status

_OPEN_TO = {Status.CONFIRMED, Status.RESCHEDULED, Status.CANCELLED, Status.COMPLETED}
# Where a visit may go from each status. Its own status again is a no-op, always allowed,
# except a reschedule, which moves the times: RESCHEDULED -> RESCHEDULED is a second move.
TRANSITIONS: dict[str, set[str]] = {
    Status.SCHEDULED: _OPEN_TO,
    Status.RESCHEDULED: _OPEN_TO,
    Status.CONFIRMED: _OPEN_TO,
    Status.CANCELLED: set(),
    Status.COMPLETED: set(),
}


def check_times(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
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
) -> Transition:
    """Book a visit and card it (telling the customer unless `notify` is False: history,
    the demo). With the CRM's id, booking it again changes nothing; the same id with other
    times is a reschedule, which has its own event."""
    check_project(customer=customer, project=project)
    check_times(starts_at, ends_at)
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
        return transition_appointment(
            appointment=appointment, to=appointment.status, at=at, notify=notify
        )
    appointment = Appointment.objects.create(
        customer=customer,
        project=project,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        crew_note=crew_note.strip(),
        external_id=external_id,
    )
    card = _card(appointment, at, notify=notify)
    return Transition(record=appointment, before="", after=appointment.status, card=card)


def find_appointment(*, customer: Customer, external_id: str) -> Appointment:
    appointment = Appointment.objects.filter(customer=customer, external_id=external_id).first()
    if appointment is None:
        raise ValidationError(
            "This customer has no appointment %(id)s.",
            code="unknown_record",
            params={"id": external_id},
        )
    return appointment


def reschedule_appointment(
    *,
    appointment: Appointment,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    at: dt.datetime | None = None,
) -> Transition:
    """Move a visit; it needs confirming again, and gets another reminder."""
    return transition_appointment(
        appointment=appointment, to=Status.RESCHEDULED, starts_at=starts_at, ends_at=ends_at, at=at
    )


def confirm_appointment(
    *, appointment: Appointment, at: dt.datetime | None = None, notify: bool = False
) -> Transition:
    """The customer confirms a visit (Schedule button, or CONFIRM by SMS or reply). The card
    tells the customer only when `notify` (an SMS CONFIRM gets its answer by SMS)."""
    return transition_appointment(
        appointment=appointment, to=Status.CONFIRMED, at=at, notify=notify
    )


@transaction.atomic
def transition_appointment(
    *,
    appointment: Appointment,
    to: str,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Transition:
    """Move a visit to status `to` as TRANSITIONS allows, and card it once per state (and
    start time). RESCHEDULED takes the new times: moving a visit to the times it has
    changes nothing, and a moved visit needs confirming again. CONFIRMED stamps when.
    The only writer of an appointment's status."""
    locked = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=appointment.pk)
    )
    before = locked.status
    name = f"The appointment {locked.title}"
    if to == Status.RESCHEDULED:
        if starts_at is None or ends_at is None:
            raise ValidationError("A reschedule needs the new times.", code="no_times")
        check_times(starts_at, ends_at)
        check_transition(record=locked, to=to, table=TRANSITIONS, name=name)
        if (locked.starts_at, locked.ends_at) != (starts_at, ends_at):
            locked.starts_at, locked.ends_at = starts_at, ends_at
            locked.status, locked.confirmed_at = Status.RESCHEDULED, None
            # Calendars that took the .ics replace their copy only for a higher SEQUENCE.
            locked.calendar_sequence += 1
            locked.save(
                update_fields=[
                    "starts_at",
                    "ends_at",
                    "status",
                    "confirmed_at",
                    "calendar_sequence",
                    "updated_at",
                ]
            )
    elif to != before:
        check_transition(record=locked, to=to, table=TRANSITIONS, name=name)
        locked.status = to
        fields = ["status", "updated_at"]
        if to == Status.CONFIRMED:
            locked.confirmed_at = at or timezone.now()
            fields.append("confirmed_at")
        if to == Status.CANCELLED:
            # A calendar applies the cancellation (STATUS:CANCELLED) as a new revision.
            locked.calendar_sequence += 1
            fields.append("calendar_sequence")
        locked.save(update_fields=fields)
        if to == Status.CONFIRMED:
            outbound.appointment_confirmed(appointment=locked)
    card = _card(locked, at, notify=notify)
    return Transition(record=locked, before=before, after=locked.status, card=card)


def _stamp(value: dt.datetime) -> int:
    return int(value.timestamp())


def _card(appointment: Appointment, at: dt.datetime | None, *, notify: bool) -> Entry:
    """Card the visit's current state, once per visit, state and start time."""
    when = appointment_when(appointment)
    common = {
        "customer": appointment.customer,
        "card_kind": CardKind.APPOINTMENT,
        "link_url": appointment_url(appointment),
        "project": appointment.project,
        "at": at,
    }
    status = appointment.status
    # Every visit was scheduled first: that card comes before any later one. Posted late (a
    # visit first seen in a later state) it still tells the customer; `notify=False` (history,
    # the demo) silences it only when it is the state being carded.
    scheduled = post_card(
        **common,
        title=f"Appointment scheduled — {when}",
        key=f"crm:appointment:{appointment.pk}:scheduled",
        notify=notify or status != Status.SCHEDULED,
    )
    stamp = _stamp(appointment.starts_at)
    if status == Status.SCHEDULED:
        return scheduled
    if status == Status.RESCHEDULED:
        title = f"Appointment rescheduled to {when}"
        key = f"crm:appointment:{appointment.pk}:rescheduled:{stamp}"
    elif status == Status.CONFIRMED:
        title = f"Appointment confirmed — {when}"
        key = f"crm:appointment:{appointment.pk}:confirmed:{stamp}"
    elif status == Status.CANCELLED:
        title = f"Appointment cancelled — {when}"
        key = f"crm:appointment:{appointment.pk}:cancelled"
    else:
        title = f"Appointment completed — {appointment.title}"
        key = f"crm:appointment:{appointment.pk}:completed"
    return post_card(**common, title=title, key=key, notify=notify)


@transaction.atomic
def ask_to_reschedule(*, appointment: Appointment, note: str = "", idempotency_key: str) -> Entry:
    """The customer asks for another time: a message to the business, about that visit, and
    `appointment.reschedule_requested` to the CRM with the note, in one transaction."""
    if not appointment.is_open:
        raise ValidationError("That appointment is not coming up.", code="bad_transition")
    body = f"Could we reschedule {appointment.title} ({appointment_when(appointment)})?"
    if note.strip():
        body = f"{body} {note.strip()}"
    entry = thread_actions.post_customer_reply(
        customer=appointment.customer,
        body=body,
        channel=Entry.Channel.PORTAL,
        project=appointment.project,
        idempotency_key=idempotency_key,
    )
    outbound.reschedule_requested(appointment=appointment, note=note.strip(), entry=entry)
    return entry
