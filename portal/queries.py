"""Reads for the portal: the staff project list."""

from __future__ import annotations

from django.db.models import Case, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When

from messaging.models import Entry
from portal.models import Project

_MESSAGE_KINDS = (Entry.Kind.STAFF_MESSAGE, Entry.Kind.AUTOMATED, Entry.Kind.CUSTOMER_REPLY)


def staff_project_rows() -> QuerySet[Project]:
    """Every project with its customer, thread, unread count and last message, in one query:
    projects with unread messages first, then by latest activity."""
    last_message = Entry.objects.filter(
        thread=OuterRef("customer__thread"), kind__in=_MESSAGE_KINDS
    ).order_by("-seq")
    return (
        Project.objects.select_related("customer", "customer__thread")
        .annotate(
            unread=F("customer__thread__staff_inbound") - F("customer__thread__staff_read"),
            has_unread=Case(
                When(
                    customer__thread__staff_inbound__gt=F("customer__thread__staff_read"),
                    then=Value(1),
                ),
                default=Value(0),
                output_field=IntegerField(),
            ),
            last_message_body=Subquery(last_message.values("body")[:1]),
            last_message_at=Subquery(last_message.values("created_at")[:1]),
        )
        .order_by(
            "-has_unread",
            F("customer__thread__last_entry_at").desc(nulls_last=True),
            "code",
        )
    )
