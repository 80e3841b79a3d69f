"""What staff see under each entry in the chat: every channel's delivery, honestly."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
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

    # One statement on PostgreSQL: the conditional UPDATE … RETURNING and the row with its
    # relations. SQLite has no UPDATE inside WITH: the claim, then the read.
    with CaptureQueriesContext(connection) as queries:
        claimed = rows.claim_loaded(due.pk, token=token, now=AT)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
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


def test_recording_a_claims_result_moves_only_its_rows_and_never_back(entry, thread, staff):
    token, other_token = uuid.uuid4(), uuid.uuid4()
    sending = delivery(entry, "sms", S.SENDING, claim_token=token)
    # A status callback overtook the worker: the row says delivered already.
    overtaken = delivery(entry, "email", S.DELIVERED, claim_token=token, delivered_at=AT)
    someone_elses = delivery(entry, "push", S.SENDING, claim_token=other_token)

    recorded = Delivery.objects.record_claim_sent(token, provider_id="SM1", sent_at=AT, note="n")

    assert recorded == 2
    for row in (sending, overtaken, someone_elses):
        row.refresh_from_db()
    assert (sending.status, sending.provider_id, sending.sent_at, sending.last_error) == (
        S.SENT, "SM1", AT, "n",
    )  # fmt: skip
    assert (overtaken.status, overtaken.provider_id) == (S.DELIVERED, "SM1")
    assert (someone_elses.status, someone_elses.provider_id) == (S.SENDING, "")


def test_an_emails_claim_joins_the_threads_unread_queued_emails_written_in_its_window(
    thread, staff
):
    def message(body, at):
        with time_machine.travel(at, tick=False):
            return actions.post_staff_message(thread=thread, author=staff, body=body, notify=False)

    read, within, held = (message(body, AT) for body in ("read", "within", "held"))
    later = message("later", AT + dt.timedelta(minutes=5))
    thread.customer_read_seq = read.seq
    thread.save(update_fields=["customer_read_seq"])
    future = AT + dt.timedelta(hours=1)  # due or not, an email's claim takes them
    emails = {
        "read": delivery(read, "email", S.QUEUED, send_after=future),
        "within": delivery(within, "email", S.QUEUED, send_after=future),
        "later": delivery(later, "email", S.QUEUED, send_after=future),
        "held": delivery(held, "email", S.HELD),  # quiet hours: stays held
        "sms": delivery(within, "sms", S.QUEUED),  # another channel
    }
    token = uuid.uuid4()

    taken = Delivery.objects.claim_unread_emails(
        thread_id=thread.pk, written_by=AT + dt.timedelta(minutes=2), token=token, now=AT
    )

    assert taken == 1
    claimed = Delivery.objects.claimed_by(token).get()
    assert claimed == emails["within"]
    assert (claimed.status, claimed.claimed_at, claimed.attempts) == (S.SENDING, AT, 1)
    for name in ("read", "later", "held", "sms"):
        emails[name].refresh_from_db()
        assert emails[name].claim_token is None, name
