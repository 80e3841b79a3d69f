"""What staff see under each entry in the chat: every channel's delivery, honestly."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import actions
from messaging.models import Side
from messaging.queries import entries_for
from notifications.models import Delivery

pytestmark = pytest.mark.django_db
S = Delivery.Status
NY = "America/New_York"
AT = dt.datetime(2025, 5, 15, 14, 24, tzinfo=dt.UTC)  # 10:24am in New York


def delivery(entry, channel, status, **fields) -> Delivery:
    return Delivery.objects.create(
        entry=entry,
        channel=channel,
        audience=fields.pop("audience", "customer"),
        recipient="x",
        status=status,
        send_after=fields.pop("send_after", AT),
        created_at=AT,
        **fields,
    )


def render(entry, audience="staff") -> str:
    """The entry as a staff timeline loads it (deliveries prefetched), rendered."""
    entry = entries_for(thread=entry.thread, audience=Side.STAFF).get(pk=entry.pk)
    with timezone.override(NY):
        return render_to_string(
            "notifications/_delivery_status.html", {"entry": entry, "audience": audience}
        )


@pytest.fixture
def entry(thread, staff):
    return actions.post_staff_message(thread=thread, author=staff, body="Hi", notify=False)


@pytest.mark.parametrize(
    ("channel", "status", "fields", "shown"),
    [
        ("sms", S.SENT, {"sent_at": AT}, 'SMS</span>\n    <span class="delivery-state">Sent'),
        ("sms", S.DELIVERED, {"delivered_at": AT}, "Delivered <time"),
        ("email", S.FAILED, {"last_error": "The email provider refused the address"}, "refused"),
        ("push", S.SUPPRESSED, {"last_error": "Read in the portal"}, "Not sent"),
        (
            "sms",
            S.HELD,
            {"send_after": AT.replace(hour=12, minute=0), "hold_reason": "quiet_hours"},
            "Held until <time",
        ),
        (
            "email",
            S.QUEUED,
            {"send_after": AT, "hold_reason": "email_delay"},
            "Waiting until <time",
        ),
        (
            "sms",
            S.QUEUED,
            {"attempts": 1, "last_error": "Twilio 20429: Too Many Requests (will retry)"},
            "Retrying at",
        ),
        ("sms", S.SENDING, {}, "Sending"),
    ],
)
def test_each_status_reads_as_what_happened(entry, channel, status, fields, shown):
    delivery(entry, channel, status, **fields)
    html = render(entry)
    assert shown in html
    for reason in filter(None, [fields.get("last_error")]):
        assert reason in html


def test_times_are_in_the_staffs_time_zone(entry):
    delivery(entry, "sms", S.HELD, send_after=dt.datetime(2025, 5, 16, 12, 0, tzinfo=dt.UTC))
    assert "8:00am</time> (quiet hours)" in render(entry)


def test_a_reply_routed_to_the_business_says_so(entry):
    delivery(entry, "sms", S.SENT, audience="business")
    assert "SMS to you" in render(entry)


def test_customers_never_see_delivery_status(entry):
    delivery(entry, "sms", S.FAILED, last_error="Twilio 21211")
    assert render(entry, audience="customer").strip() == ""


def test_an_entry_without_deliveries_renders_nothing(entry):
    assert render(entry).strip() == ""


def test_deliveries_of_a_page_of_entries_load_in_one_query(
    thread, staff, django_assert_num_queries
):
    for i in range(30):
        e = actions.post_staff_message(thread=thread, author=staff, body=str(i), notify=False)
        delivery(e, "push", S.SENT)
        delivery(e, "sms", S.DELIVERED)
        delivery(e, "email", S.QUEUED)
    # The entries, then every one of their deliveries.
    with django_assert_num_queries(2):
        entries = list(entries_for(thread=thread, audience=Side.STAFF))
    assert [d.channel for d in entries[0].deliveries.all()] == ["sms", "email", "push"]
    with django_assert_num_queries(0), timezone.override(NY):
        html = "".join(
            render_to_string(
                "notifications/_delivery_status.html", {"entry": e, "audience": "staff"}
            )
            for e in entries
        )
    assert html.count('class="delivery ') == 90


def test_the_staff_chat_gives_each_entry_its_deliveries(staff_client, thread, staff):
    entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    response = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true")
    (shown,) = response.context["page"].entries
    assert shown.pk == entry.pk
    assert {d.channel for d in shown.deliveries.all()} == {"sms", "email"}


def test_a_claim_returns_the_row_it_took_loaded_and_only_once(entry):
    due = delivery(entry, "sms", S.QUEUED, attempts=2)
    later = delivery(entry, "email", S.QUEUED, send_after=AT + dt.timedelta(hours=1))
    rows = Delivery.objects.select_related("entry__thread__customer__business", "staff_user")
    token = uuid.uuid4()

    # One statement: the conditional UPDATE … RETURNING and the row with its relations.
    with CaptureQueriesContext(connection) as queries:
        claimed = rows.claim_loaded(due.pk, token=token, now=AT)
    assert len(queries) == 1
    assert (claimed.pk, claimed.status, claimed.claim_token, claimed.attempts) == (
        due.pk, S.SENDING, token, 3,
    )  # fmt: skip
    assert claimed.claimed_at == AT
    business = entry.thread.customer.business
    with CaptureQueriesContext(connection) as queries:
        assert claimed.entry.thread.customer.business == business
        assert claimed.staff_user is None
    assert len(queries) == 0  # loaded with the claim
    due.refresh_from_db()
    assert (due.status, due.claim_token, due.attempts) == (S.SENDING, token, 3)

    # Taken already, or not due yet: nothing, and nothing changes.
    assert rows.claim_loaded(due.pk, token=token, now=AT) is None
    assert rows.claim_loaded(later.pk, token=token, now=AT) is None
    later.refresh_from_db()
    assert (later.status, later.attempts) == (S.QUEUED, 0)
