"""The CRM's automations: the day-before reminder, CONFIRM, the follow-up after a project.

Each finds its due work with a query and acts through actions whose idempotency keys make a
second run (a retried task, two beat schedulers, a crash between the message and the
bookkeeping) write nothing new. Messages are automated and not urgent, so the notification
planner holds them through the customer's quiet hours.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from crm_events import actions
from crm_events.models import Appointment, ProjectFollowUp
from crm_events.queries import (
    money_settings,
    next_unconfirmed_appointment,
    upcoming_open_appointment,
)
from messaging.models import Entry
from portal.models import Business, Customer, Project

logger = logging.getLogger(__name__)


# -- CONFIRM ---------------------------------------------------------------------------------


def confirm_by_keyword(*, entry: Entry, customer: Customer) -> bool:
    """CONFIRM (by SMS or a portal reply) confirms the customer's next unconfirmed visit.
    With nothing to confirm, a polite automated answer instead of an error. Runs inside the
    reply's transaction (messaging.keywords)."""
    if not money_settings(customer.business).confirm_by_reply_enabled:
        return False  # switched off for this business: the reply is just text
    by_sms = entry.channel == Entry.Channel.SMS
    appointment = next_unconfirmed_appointment(customer=customer, after=entry.created_at)
    if appointment is not None:
        try:
            actions.confirm_appointment(appointment=appointment, at=entry.created_at, notify=by_sms)
            return True
        except ValidationError:
            # Cancelled between the query and the lock: answer as if there were nothing.
            logger.info("CONFIRM raced a change of appointment %s", appointment.pk)
    confirmed = upcoming_open_appointment(customer=customer, after=entry.created_at)
    if confirmed is not None:
        body = (
            f"Thanks, {customer.first_name}! Your next appointment, "
            f"{actions.appointment_when(confirmed)}, is already confirmed."
        )
    else:
        body = (
            f"Thanks, {customer.first_name}! There is no appointment waiting for your "
            "confirmation right now. We'll let you know when one is booked."
        )
    actions.post_automated(
        customer=customer,
        body=body,
        channel=Entry.Channel.SMS if by_sms else Entry.Channel.PORTAL,
        idempotency_key=f"crm:confirm:{entry.pk}:nothing",
        at=entry.created_at,
    )
    return True


# -- reminders -------------------------------------------------------------------------------


def _local_day_bounds(day: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def reminder_text(appointment: Appointment) -> str:
    customer = appointment.customer
    text = (
        f"Hi {customer.first_name}! Reminder: {appointment.title} is tomorrow, "
        f"{actions.appointment_when(appointment)}."
    )
    if appointment.awaiting_confirmation:
        return f"{text} Reply CONFIRM to confirm."
    return f"{text} See you then!"


def send_due_reminders(*, now: dt.datetime | None = None) -> int:
    """The day-before reminder, for every open visit that starts tomorrow in its business's
    time zone, once the business's reminder time has come. Returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for business in Business.objects.select_related("crm_settings"):
        settings = getattr(business, "crm_settings", None) or actions.crm_settings(business)
        if not settings.reminders_enabled:
            continue
        zone = zoneinfo.ZoneInfo(business.time_zone)
        local_now = now.astimezone(zone)
        if local_now.time() < settings.reminder_time:
            continue
        start, end = _local_day_bounds(local_now.date() + dt.timedelta(days=1), zone)
        due = (
            Appointment.objects.filter(
                customer__business=business,
                starts_at__gte=start,
                starts_at__lt=end,
                status__in=[
                    Appointment.Status.SCHEDULED,
                    Appointment.Status.RESCHEDULED,
                    Appointment.Status.CONFIRMED,
                ],
            )
            .filter(Q(reminded_for__isnull=True) | ~Q(reminded_for=F("starts_at")))
            .values_list("pk", flat=True)
        )
        for pk in list(due):
            sent += _remind(pk)
    return sent


@transaction.atomic
def _remind(appointment_id: int) -> int:
    # of=self: the project is a nullable join, which PostgreSQL will not lock.
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=appointment_id)
    )
    if appointment.reminded_for == appointment.starts_at or not appointment.is_open:
        return 0  # another run got here first
    actions.post_automated(
        customer=appointment.customer,
        body=reminder_text(appointment),
        project=appointment.project,
        idempotency_key=(
            f"crm:appointment:{appointment.pk}:reminder:{int(appointment.starts_at.timestamp())}"
        ),
    )
    Appointment.objects.filter(pk=appointment.pk).update(reminded_for=appointment.starts_at)
    return 1


# -- follow-ups ------------------------------------------------------------------------------


def _project_name(project: Project) -> str:
    """'Deck Replacement Project' -> 'deck replacement', for "how did the … come out?"."""
    name = project.title.strip()
    if name.lower().endswith(" project"):
        name = name[: -len(" project")]
    return name.lower()


def send_due_follow_ups(*, now: dt.datetime | None = None) -> int:
    """A message some days after a project is completed. A project counts as completed from
    the first run that sees it so (projects are marked completed in the admin, which does
    not stamp a time). Returns how many were sent."""
    now = now or timezone.now()
    seen = ProjectFollowUp.objects.values("project_id")
    newly_completed = Project.objects.filter(status=Project.Status.COMPLETED).exclude(pk__in=seen)
    ProjectFollowUp.objects.bulk_create(
        [ProjectFollowUp(project=p, completed_seen_at=now) for p in newly_completed],
        ignore_conflicts=True,
    )
    sent = 0
    pending = ProjectFollowUp.objects.filter(
        sent_at__isnull=True, project__status=Project.Status.COMPLETED
    ).select_related("project__customer__business__crm_settings")
    for follow_up in pending:
        business = follow_up.project.customer.business
        settings = getattr(business, "crm_settings", None) or actions.crm_settings(business)
        if not settings.follow_ups_enabled:
            continue
        if follow_up.completed_seen_at + dt.timedelta(days=settings.follow_up_days) > now:
            continue
        sent += _follow_up(follow_up.pk, template=settings.follow_up_message, now=now)
    return sent


@transaction.atomic
def _follow_up(follow_up_id: int, *, template: str, now: dt.datetime) -> int:
    follow_up = (
        ProjectFollowUp.objects.select_for_update()
        .select_related("project__customer")
        .get(pk=follow_up_id)
    )
    if follow_up.sent_at is not None:
        return 0
    project = follow_up.project
    try:
        body = template.format(
            first_name=project.customer.first_name, project=_project_name(project)
        )
    except (KeyError, IndexError, ValueError):
        logger.warning("follow-up message template is malformed; using the default")
        body = f"Hi {project.customer.first_name}, how did the {_project_name(project)} come out?"
    actions.post_automated(
        customer=project.customer,
        body=body,
        project=project,
        idempotency_key=f"crm:project:{project.pk}:follow-up",
    )
    ProjectFollowUp.objects.filter(pk=follow_up.pk).update(sent_at=now)
    return 1


def run_automations(*, now: dt.datetime | None = None) -> dict:
    return {
        "reminders": send_due_reminders(now=now),
        "follow_ups": send_due_follow_ups(now=now),
    }
