"""Who an announcement goes to, and the text each of them reads.

Reads only. The same functions serve the preview (nothing written) and Send (which freezes
what they return into AnnouncementRecipient rows), so what staff previewed is what goes.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from crm_events.announcements.models import Announcement
from crm_events.formatting import time_range
from crm_events.models import Appointment
from messaging.actions import clean_body
from notifications.outbound.segments import Segments, count_segments
from portal.models import Business, Customer, CustomerTag, Project

Audience = Announcement.Audience

VARIABLES = {
    "first_name": "the customer's first name",
    "project": "the project's name (the one in the chosen status, else their latest)",
    "visit_time": "the time of their visit that day (only with a visit date)",
}
# {name}: a variable. Anything else in braces is refused, so a typo never goes out as text.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_OPEN_VISITS = [
    Appointment.Status.SCHEDULED,
    Appointment.Status.RESCHEDULED,
    Appointment.Status.CONFIRMED,
    Appointment.Status.COMPLETED,
]


@dataclass(frozen=True)
class Choice:
    """Who it goes to, as staff chose it."""

    audience: str
    visit_date: dt.date | None = None
    project_status: str = ""
    tag: CustomerTag | None = None


@dataclass(frozen=True)
class Recipient:
    customer: Customer
    project: Project | None = None
    visit_starts_at: dt.datetime | None = None
    visit_ends_at: dt.datetime | None = None


def check_variables(body: str, *, choice: Choice) -> None:
    """Refuse a body naming a variable that does not exist, or {visit_time} without a date."""
    names = _PLACEHOLDER.findall(body)
    unknown = sorted({name for name in names if name not in VARIABLES})
    if unknown:
        raise ValidationError(
            "Unknown variable %(names)s. You can use %(known)s.",
            code="unknown_variable",
            params={
                "names": ", ".join(f"{{{n}}}" for n in unknown),
                "known": ", ".join(f"{{{n}}}" for n in VARIABLES),
            },
        )
    if "visit_time" in names and choice.audience != Audience.VISIT_ON:
        raise ValidationError(
            "{visit_time} needs the recipients chosen by a visit date.", code="visit_time"
        )


def visit_time(recipient: Recipient) -> str:
    """'8–9am' (the date is the one staff chose, so it is left out)."""
    if recipient.visit_starts_at is None or recipient.visit_ends_at is None:
        return ""
    text = time_range(
        recipient.visit_starts_at, recipient.visit_ends_at, recipient.customer.time_zone
    )
    # 'Thu May 15, 8–9am' -> '8–9am'; a visit past midnight keeps both days.
    head, _, rest = text.partition(", ")
    return rest if "–" in rest and " – " not in text else text


def project_name(recipient: Recipient) -> str:
    return recipient.project.title if recipient.project is not None else "your project"


def render(body: str, recipient: Recipient) -> str:
    values = {
        "first_name": recipient.customer.first_name,
        "project": project_name(recipient),
        "visit_time": visit_time(recipient),
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def _day_bounds(day: dt.date, zone: str) -> tuple[dt.datetime, dt.datetime]:
    tz = zoneinfo.ZoneInfo(zone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)


def recipients(*, business: Business, choice: Choice) -> list[Recipient]:
    """The customers `choice` names, by name, each with what fills their variables. Three
    queries whatever the count: their visits, the customers, their projects."""
    customers = Customer.objects.filter(business=business).order_by("name", "pk")
    visits: dict[int, Appointment] = {}
    if choice.audience == Audience.VISIT_ON:
        # The business's calendar day: a visit at 11pm in the business's zone is that day's.
        start, end = _day_bounds(choice.visit_date, business.time_zone)
        for visit in (
            Appointment.objects.filter(
                customer__business=business,
                starts_at__gte=start,
                starts_at__lt=end,
                status__in=_OPEN_VISITS,
            )
            .order_by("-starts_at")
            .select_related("project")
        ):
            visits[visit.customer_id] = visit  # the earliest of the day wins (ordered last)
        customers = customers.filter(pk__in=visits.keys())
    elif choice.audience == Audience.PROJECT_STATUS:
        customers = customers.filter(projects__status=choice.project_status).distinct()
    elif choice.audience == Audience.TAG:
        customers = customers.filter(tags=choice.tag)
    found = list(customers)
    projects: dict[int, Project] = {}
    if found:
        wanted = Project.objects.filter(customer__in=[c.pk for c in found])
        if choice.audience == Audience.PROJECT_STATUS:
            wanted = wanted.filter(status=choice.project_status)
        for project in wanted.order_by("created_at", "pk"):
            projects[project.customer_id] = project  # the latest wins
    result = []
    for customer in found:
        visit = visits.get(customer.pk)
        # The visit's own project, when it names one.
        project = (visit.project if visit else None) or projects.get(customer.pk)
        result.append(
            Recipient(
                customer=customer,
                project=project,
                visit_starts_at=visit.starts_at if visit else None,
                visit_ends_at=visit.ends_at if visit else None,
            )
        )
    return result


@dataclass(frozen=True)
class Preview:
    recipients: list[Recipient]
    sample: str  # the first recipient's text
    segments: Segments  # of the sample
    longest: Segments  # of the longest text any recipient gets


def preview(*, business: Business, body: str, choice: Choice) -> Preview:
    """What Send would do, or a ValidationError saying why it would not: no one chosen, an
    unknown variable, a text longer than its channel allows."""
    body = clean_body(body)  # empty, over MESSAGE_MAX_LENGTH: the rule every message obeys
    check_variables(body, choice=choice)
    chosen = recipients(business=business, choice=choice)
    if not chosen:
        raise ValidationError("No customer matches those recipients.", code="no_recipients")
    texts = [render(body, r) for r in chosen]
    longest_text = max(texts, key=lambda t: count_segments(t).count)
    for text in texts:
        clean_body(text)  # filled in, it must still fit
    longest = count_segments(longest_text)
    limit = settings.ANNOUNCEMENT_MAX_SMS_SEGMENTS
    if longest.count > limit and any(r.customer.phone for r in chosen):
        raise ValidationError(
            "This message takes %(count)s SMS segments (%(encoding)s); at most %(limit)s are "
            "allowed. Shorten it%(hint)s.",
            code="too_many_segments",
            params={
                "count": longest.count,
                "encoding": longest.encoding,
                "limit": limit,
                "hint": (
                    ", or replace the characters outside the GSM-7 alphabet (emoji, curly "
                    "quotes) that make every segment hold 67 characters instead of 153"
                    if longest.encoding != "GSM-7"
                    else ""
                ),
            },
        )
    return Preview(
        recipients=chosen, sample=texts[0], segments=count_segments(texts[0]), longest=longest
    )
