"""Work requests: the customer asks for work (/requests/new/), and staff turn a request into a
project (the admin's "Create project from request").

`request_work` writes, in one transaction, the `WorkRequest`, its card in the thread (with the
photos; live to staff and the customer's other tabs, unread for staff) and `request.created`
to the CRM's outbox. The form's token makes a double submit one request.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm_events.models import WorkRequest
from crm_events.outbound import events as outbound
from messaging import actions as thread_actions
from messaging.attachments import NewAttachment
from messaging.models import Entry
from portal.models import Customer, Project

DESCRIPTION_MAX_LENGTH = 2000
ADDRESS_MAX_LENGTH = 300
MAX_PHOTOS = 5
# How far ahead a preferred day may be: past this it is a typo (2062 for 2026).
WINDOW_MAX_DAYS_AHEAD = 365
PartOfDay = WorkRequest.PartOfDay
# The hours each part of the day stands for, in the customer's zone (the CRM gets both).
PART_HOURS = {
    PartOfDay.MORNING: (8, 12),
    PartOfDay.AFTERNOON: (12, 17),
    PartOfDay.EVENING: (17, 20),
}


@dataclass(frozen=True)
class Window:
    """A preferred time: a day and a part of it, in the customer's time zone."""

    date: dt.date
    part: str

    def bounds(self, zone: str) -> tuple[dt.datetime, dt.datetime]:
        tz = zoneinfo.ZoneInfo(zone)
        start, end = PART_HOURS[self.part]
        day = dt.datetime.combine(self.date, dt.time(), tzinfo=tz)
        return day.replace(hour=start), day.replace(hour=end)


def check_window(window: Window, *, customer: Customer, now: dt.datetime | None = None) -> None:
    """A preferred time must start in the future and within WINDOW_MAX_DAYS_AHEAD."""
    if window.part not in PART_HOURS:
        raise ValidationError("Choose morning, afternoon or evening.", code="bad_part")
    now = now or timezone.now()
    starts_at, _ = window.bounds(customer.time_zone)
    if starts_at <= now:
        raise ValidationError("Choose a time that has not started yet.", code="past_window")
    today = now.astimezone(zoneinfo.ZoneInfo(customer.time_zone)).date()
    if window.date > today + dt.timedelta(days=WINDOW_MAX_DAYS_AHEAD):
        raise ValidationError(
            "Choose a day within the next year.", code="far_window", params={"date": window.date}
        )


def clean_text(value: str, *, limit: int, what: str) -> str:
    text = (value or "").replace("\r\n", "\n").replace("\x00", "").strip()
    if not text:
        raise ValidationError(f"Say {what}.", code="required")
    if len(text) > limit:
        raise ValidationError(
            f"Keep it to {limit:,} characters (this has {len(text):,}).", code="too_long"
        )
    return text


def card_title(description: str, photo_count: int) -> str:
    """ "Work request: Replace the back gate — 2 photos" (the card's headline and detail)."""
    first_line = description.splitlines()[0].strip()
    # " — " separates a card's headline from its detail: not inside the customer's words.
    short = first_line.replace(" — ", " - ")
    if len(short) > 80:
        short = short[:79].rstrip() + "…"
    title = f"Work request: {short}"
    if photo_count:
        title += f" — {photo_count} photo{'s' if photo_count != 1 else ''}"
    return title


@transaction.atomic
def request_work(
    *,
    customer: Customer,
    description: str,
    address: str,
    windows: Sequence[Window],
    photos: Sequence[NewAttachment] = (),
    key: str,
) -> tuple[WorkRequest, bool]:
    """The customer asks for work. Returns the request and whether it was made now (False:
    this `key` made one already, which comes back unchanged). Bad input raises
    ValidationError before anything is written."""
    description = clean_text(description, limit=DESCRIPTION_MAX_LENGTH, what="what needs doing")
    address = clean_text(address, limit=ADDRESS_MAX_LENGTH, what="where the work is")
    if not 1 <= len(windows) <= 2:
        raise ValidationError("Give one or two times that suit you.", code="windows")
    for window in windows:
        check_window(window, customer=customer)
    if len(photos) > MAX_PHOTOS:
        raise ValidationError(f"Attach at most {MAX_PHOTOS} photos.", code="too_many_photos")
    # The card's append locks the thread and checks the key under that lock: of two submits
    # racing, the second waits for the first to commit and gets its card back.
    entry, created = thread_actions.post_customer_card(
        customer=customer,
        card_kind=Entry.CardKind.REQUEST,
        title=card_title(description, len(photos)),
        idempotency_key=f"request:{key}",
        attachments=photos,
    )
    if not created:
        return WorkRequest.objects.get(customer=customer, entry=entry), False
    work_request = WorkRequest.objects.create(
        customer=customer,
        description=description,
        address=address,
        windows=[{"date": w.date.isoformat(), "part": w.part} for w in windows],
        entry=entry,
        key=key,
    )
    outbound.request_created(work_request=work_request, entry=entry, windows=windows)
    return work_request, True


_CODE = re.compile(r"^PRJ-(\d+)$")


def _next_project_code() -> str:
    numbers = [
        int(m.group(1))
        for code in Project.objects.filter(code__regex=r"^PRJ-[0-9]+$").values_list(
            "code", flat=True
        )
        if (m := _CODE.match(code))
    ]
    return f"PRJ-{max(numbers, default=1000) + 1}"


@transaction.atomic
def create_project_from_request(*, work_request: WorkRequest) -> Project:
    """Staff turn a request into a project for that customer, with a new code, and link
    it. A request that has its project already keeps it (returned as it is)."""
    locked = (
        WorkRequest.objects.select_for_update(of=("self",))
        .select_related("project", "customer")
        .get(pk=work_request.pk)
    )
    if locked.project is not None:
        return locked.project
    title = locked.description.splitlines()[0].strip()[:160]
    for _ in range(5):
        try:
            # A savepoint: a code taken meanwhile by another writer is tried again.
            with transaction.atomic():
                project = Project.objects.create(
                    customer=locked.customer,
                    code=_next_project_code(),
                    title=title,
                    status=Project.Status.PLANNING,
                )
            break
        except IntegrityError:
            continue
    else:
        raise ValidationError("Could not find a free project code; try again.", code="no_code")
    WorkRequest.objects.filter(pk=locked.pk).update(project=project)
    work_request.project = project
    return project
