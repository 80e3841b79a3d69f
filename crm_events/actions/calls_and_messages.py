"""Calls and messages: a phone call logged with its marker in the thread, "our crew is on
their way", and messages from automations. None of them is a card; each is one append to the
thread through `messaging.actions`, keyed by the caller's idempotency key.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import check_project
from crm_events.models import Call
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Customer, Project


@transaction.atomic
def log_call(
    *,
    customer: Customer,
    started_at: dt.datetime,
    duration_seconds: int,
    idempotency_key: str,
    direction: str = Call.Direction.OUTBOUND,
    transcript: str = "",
    author: AbstractBaseUser | None = None,
    project: Project | None = None,
    external_id: str = "",
) -> Call:
    """Record a phone call and its marker in the thread; the transcript stays with staff."""
    check_project(customer=customer, project=project)
    if duration_seconds < 0 or duration_seconds > 24 * 3600:
        raise ValidationError("A call lasts between 0 seconds and a day.", code="bad_duration")
    if timezone.is_naive(started_at):
        raise ValidationError("Times need a UTC offset.", code="naive_time")
    if direction not in Call.Direction.values:
        raise ValidationError("A call is inbound or outbound.", code="bad_direction")
    entry = thread_actions.log_call(
        thread=thread_actions.ensure_thread(customer=customer),
        started_at=started_at,
        duration_seconds=duration_seconds,
        transcript=transcript,
        author=author,
        project=project,
        idempotency_key=idempotency_key,
    )
    call, _ = Call.objects.get_or_create(
        entry=entry,
        defaults={
            "customer": customer,
            "project": project,
            "started_at": started_at,
            "duration_seconds": duration_seconds,
            "direction": direction,
            "transcript": entry.transcript,
            "author": author,
            "external_id": external_id,
        },
    )
    return call


def _greeting(customer: Customer, now: dt.datetime) -> str:
    hour = timezone.localtime(now, timezone=_zone(customer.time_zone)).hour
    if hour < 12:
        return "Good morning"
    if hour < 17:
        return "Good afternoon"
    return "Good evening"


def _zone(name: str):
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def send_crew_on_the_way(
    *,
    customer: Customer,
    eta_minutes: int,
    idempotency_key: str,
    project: Project | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """ "Our crew is on their way": urgent, so it goes at once, even in quiet hours."""
    check_project(customer=customer, project=project)
    if not 1 <= eta_minutes <= 24 * 60:
        raise ValidationError("The ETA is between 1 minute and a day.", code="bad_eta")
    now = at or timezone.now()
    if eta_minutes < 60:
        eta = f"{eta_minutes} minute{'s' if eta_minutes != 1 else ''}"
    else:
        hours, minutes = divmod(eta_minutes, 60)
        eta = f"{hours} hour{'s' if hours != 1 else ''}" + (f" {minutes} min" if minutes else "")
    body = (
        f"{_greeting(customer, now)} {customer.first_name}! Our crew is on their way — "
        f"arriving in about {eta}."
    )
    return thread_actions.post_automated_message(
        thread=thread_actions.ensure_thread(customer=customer),
        body=body,
        channel=Entry.Channel.SMS,
        project=project,
        urgent=True,
        idempotency_key=idempotency_key,
        at=at,
    )


def post_automated(
    *,
    customer: Customer,
    body: str,
    idempotency_key: str,
    channel: str = Entry.Channel.SMS,
    urgent: bool = False,
    project: Project | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """A message from an automation (the CRM's, or ours), labelled Automated in the thread."""
    check_project(customer=customer, project=project)
    return thread_actions.post_automated_message(
        thread=thread_actions.ensure_thread(customer=customer),
        body=body,
        channel=channel,
        project=project,
        urgent=urgent,
        idempotency_key=idempotency_key,
        at=at,
    )
