"""The customer's private calendar feed link (crm_events.calendar): "Reset link"."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm_events.models import CalendarFeed
from portal.models import Customer


@transaction.atomic
def reset_calendar_feed(*, customer: Customer) -> int:
    """Every feed link made before stops working (the signed token names the version).
    Returns the new version. The only writer of a feed's version."""
    feed, _ = CalendarFeed.objects.select_for_update().get_or_create(customer=customer)
    CalendarFeed.objects.filter(pk=feed.pk).update(
        version=F("version") + 1, reset_at=timezone.now()
    )
    return feed.version + 1
