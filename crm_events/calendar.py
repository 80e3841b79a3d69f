""" "Add to calendar": appointments as RFC 5545 iCalendar (the `icalendar` package), one visit
as a download and all of a customer's visits as a private feed.

Each visit is one VEVENT with a stable UID (`appointment-<pk>@<host>`), so a calendar that
took it before replaces it rather than adding a second; its SEQUENCE is the visit's
`calendar_sequence` (bumped by `transition_appointment` on every move and on cancelling),
which is what makes a calendar take the newer copy. Times are written in UTC (`...Z`), which
every calendar reads without a VTIMEZONE and shows in its own zone.

The feed's address carries a signed token (customer and version): no session is needed, as
calendars fetch it on their own. "Reset link" bumps the version (`actions.reset_calendar_feed`), and
every link made before answers 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signing import BadSignature, Signer
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event

from crm_events.models import Appointment, CalendarFeed
from portal.models import Customer

_FEED_SALT = "crm_events.calendar.feed"
# How far back the feed reaches: a calendar keeps what it already has.
FEED_PAST_DAYS = 180


def _host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "porchlight.localhost"


def _event(appointment: Appointment, *, stamp: dt.datetime) -> Event:
    event = Event()
    event.add("uid", f"appointment-{appointment.pk}@{_host()}")
    event.add("dtstamp", stamp)
    event.add("sequence", appointment.calendar_sequence)
    event.add("dtstart", appointment.starts_at.astimezone(dt.UTC))
    event.add("dtend", appointment.ends_at.astimezone(dt.UTC))
    business = appointment.customer.business
    event.add("summary", f"{appointment.title} · {business.name}")
    address = appointment.customer.address or ""
    if address:
        event.add("location", address)
    description = [appointment.crew_note] if appointment.crew_note else []
    if appointment.project is not None:
        description.append(f"Project: {appointment.project.title} ({appointment.project.code})")
    description.append(f"{settings.SITE_URL}{reverse('schedule')}")
    event.add("description", "\n".join(description))
    event.add("url", f"{settings.SITE_URL}{reverse('schedule')}#appointment-{appointment.pk}")
    cancelled = appointment.status == Appointment.Status.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def calendar_bytes(appointments: Iterable[Appointment], *, name: str) -> bytes:
    """An iCalendar file of these visits (each with its customer, business and project
    loaded)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Porchlight//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = timezone.now().astimezone(dt.UTC).replace(microsecond=0)
    for appointment in appointments:
        calendar.add_component(_event(appointment, stamp=stamp))
    return calendar.to_ical()


def feed_appointments(customer: Customer, *, now: dt.datetime | None = None):
    since = (now or timezone.now()) - dt.timedelta(days=FEED_PAST_DAYS)
    return (
        Appointment.objects.filter(customer=customer, ends_at__gte=since)
        .select_related("project", "customer__business")
        .order_by("starts_at", "pk")
    )


# -- the private feed's address --------------------------------------------------------------


def _signer() -> Signer:
    return Signer(salt=_FEED_SALT, sep=".")


def feed_version(customer: Customer) -> int:
    return (
        CalendarFeed.objects.filter(customer=customer).values_list("version", flat=True).first()
        or 0
    )


def feed_token(customer: Customer) -> str:
    return _signer().sign(f"{customer.pk}-{feed_version(customer)}")


def feed_url(customer: Customer) -> str:
    return f"{settings.SITE_URL}{reverse('calendar_feed', args=[feed_token(customer)])}"


def customer_for_feed(token: str) -> Customer:
    """The customer whose current link this is, or Http404 (forged, or reset since)."""
    try:
        customer_pk, version = (int(part) for part in _signer().unsign(token).split("-"))
    except (BadSignature, ValueError):
        raise Http404 from None
    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or feed_version(customer) != version:
        raise Http404
    return customer
