"""Email through anymail's real Postmark backend, sent to the fake Postmark on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import actions
from messaging.models import Side
from notifications.models import Delivery
from notifications.outbound import outbox, sending
from notifications.reply_addresses import STAFF_SIDE, parse_reply_address, reply_address
from tests.factories import CustomerFactory
from tests.notification_links import lands_on

UTC = dt.UTC
DAYTIME = dt.datetime(2025, 5, 15, 14, 15, tzinfo=UTC)  # 10:15am in New York

pytestmark = pytest.mark.django_db

CLAIM_QUERIES = 1 if connection.vendor == "postgresql" else 2
S = Delivery.Status


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


def email_of(entry) -> Delivery:
    return Delivery.objects.get(entry=entry, channel="email")


def sweep_at(clock, committed, **delta):
    clock.shift(dt.timedelta(**delta))
    with committed():
        return outbox.sweep_deliveries()


def test_sarahs_email_arrives_after_the_delay(fake_postmark, thread, staff, committed, clock):
    with committed():
        entry = actions.post_staff_message(
            thread=thread, author=staff, body="Hi Sarah, how did the deck come out?"
        )
    sweep_at(clock, committed, seconds=119)
    assert fake_postmark.emails == []

    sweep_at(clock, committed, seconds=1)
    (email,) = fake_postmark.emails
    assert email.to == "Sarah Mitchell <sarah@example.com>"
    assert email.from_ == "Mike's Contracting <portal@porchlight.localhost>"
    assert email.subject == "Your conversation with Mike's Contracting"
    assert email.reply_to == reply_address(thread.pk)
    assert "Hi Sarah, how did the deck come out?" in email.text
    link = re.search(r"View in Portal: http://127\.0\.0\.1:8000(/open/\S+/)", email.text)[1]
    assert lands_on(link) == (thread.customer_id, entry.pk, entry.seq, "email")
    assert "May 15, 10:15am" in email.text  # her time zone
    assert "how did the deck come out?" in email.html
    assert 'href="http://127.0.0.1:8000/open/' in email.html
    assert ">View in Portal</a>" in email.html

    delivery = email_of(entry)
    assert delivery.status == S.SENT
    assert delivery.provider_id == email.message_id  # what Postmark's webhooks will name


def test_her_email_is_skipped_if_she_read_the_message_meanwhile(
    fake_postmark, thread, staff, committed, clock, customer_client
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Quick question")
    clock.shift(dt.timedelta(seconds=30))
    assert customer_client.get("/messages/").status_code == 200  # she reads it
    sweep_at(clock, committed, minutes=5)
    assert fake_postmark.requests == []
    delivery = email_of(entry)
    assert delivery.status == S.SUPPRESSED
    assert delivery.last_error == "Read in the portal before it was sent"


def test_messages_within_the_delay_go_as_one_email(fake_postmark, thread, staff, committed, clock):
    with committed():
        first = actions.post_staff_message(thread=thread, author=staff, body="First thing")
    clock.shift(dt.timedelta(seconds=40))
    with committed():
        actions.add_internal_note(thread=thread, author=staff, body="NOTE-SECRET gate code")
        card = actions.post_event_card(
            thread=thread, card_kind="invoice", title="Invoice #2041 sent", link_url="/invoices/"
        )
    clock.shift(dt.timedelta(seconds=70))
    with committed():
        third = actions.post_automated_message(thread=thread, body="Third thing")
    clock.shift(dt.timedelta(seconds=20))  # 2:10 after the first, 0:20 after the third
    with committed():
        later = actions.post_staff_message(thread=thread, author=staff, body="Later thing")
    sweep_at(clock, committed, seconds=0)

    (email,) = fake_postmark.emails
    positions = [email.text.index(t) for t in ("First thing", "Invoice #2041", "Third thing")]
    assert positions == sorted(positions)
    assert "3 messages" in email.text
    assert "Automated" in email.text
    assert "http://127.0.0.1:8000/invoices/" in email.text
    assert "NOTE-SECRET" not in email.text + email.html
    assert "Later thing" not in email.text  # written after the first one's window
    for entry in (first, card, third):
        assert email_of(entry).status == S.SENT
        assert email_of(entry).provider_id == email.message_id
    assert email_of(later).status == S.QUEUED

    sweep_at(clock, committed, minutes=2)
    assert [e.text.count("Later thing") for e in fake_postmark.emails] == [0, 1]


def test_an_email_costs_a_fixed_number_of_queries_alone_or_carrying_several(
    fake_postmark, thread, staff, committed, clock
):
    # The worker sends dozens of these a second: every query is a round trip and a compile.
    with committed():
        alone = actions.post_staff_message(thread=thread, author=staff, body="Alone")
    clock.shift(dt.timedelta(minutes=3))
    delivery_id = email_of(alone).pk
    with CaptureQueriesContext(connection) as queries:
        assert sending.send_delivery(delivery_id=delivery_id) == S.SENT
    # The claim with everything it sends from (one statement on PostgreSQL; the claim, then
    # the read, on SQLite); other emails of the thread joined to it (none); the emails it
    # replies to; the result.
    assert len(queries) == 3 + CLAIM_QUERIES, "\n".join(q["sql"] for q in queries)

    with committed():
        first = actions.post_staff_message(thread=thread, author=staff, body="First of two")
    clock.shift(dt.timedelta(seconds=30))
    with committed():
        second = actions.post_staff_message(thread=thread, author=staff, body="Second of two")
    clock.shift(dt.timedelta(minutes=3))
    delivery_id = email_of(first).pk
    with CaptureQueriesContext(connection) as queries:
        assert sending.send_delivery(delivery_id=delivery_id) == S.SENT
    # The same, and the joined rows read once (their thread is the claim's).
    assert len(queries) == 4 + CLAIM_QUERIES, "\n".join(q["sql"] for q in queries)
    _, both = fake_postmark.emails
    assert "First of two" in both.text and "Second of two" in both.text
    link = re.search(r"View in Portal: http://127\.0\.0\.1:8000(/open/\S+/)", both.text)[1]
    assert lands_on(link) == (thread.customer_id, second.pk, second.seq, "email")
    assert both.headers["In-Reply-To"] == fake_postmark.emails[0].headers["Message-ID"]


def test_each_email_of_a_thread_replies_to_emails_we_really_sent(
    fake_postmark, thread, staff, committed, clock
):
    # Issue 18 item 16: they used to reply to a made-up "<thread-N.customer@…>" that no
    # email ever carried, so a mail client had nothing to thread them under.
    for body in ("One", "Two", "Three"):
        with committed():
            actions.post_staff_message(thread=thread, author=staff, body=body)
        sweep_at(clock, committed, minutes=3)
    first, second, third = fake_postmark.emails
    ids = [email.headers["Message-ID"] for email in (first, second, third)]
    assert "In-Reply-To" not in first.headers and "References" not in first.headers
    assert (second.headers["In-Reply-To"], second.headers["References"]) == (ids[0], ids[0])
    assert third.headers["In-Reply-To"] == ids[1]
    assert third.headers["References"] == f"{ids[0]} {ids[1]}"
    assert all(i.endswith("@porchlight.localhost>") for i in ids) and len(set(ids)) == 3
    assert first.subject == second.subject == third.subject
    assert first.reply_to == second.reply_to  # one reusable address per thread


def test_a_customer_reply_is_emailed_to_the_business_with_a_link_to_the_staff_chat(
    fake_postmark, business, committed
):
    emailonly = CustomerFactory(business=business, name="Daniel Ortiz", phone="")
    with committed():
        entry = actions.post_customer_reply(customer=emailonly, body="Any time after 3pm.")
    (email,) = fake_postmark.emails  # no delay for the business
    assert email.to == business.email
    assert email.from_ == "Daniel Ortiz via Porchlight <portal@porchlight.localhost>"
    assert email.subject == "Conversation with Daniel Ortiz"
    assert email.reply_to == reply_address(entry.thread_id, STAFF_SIDE)
    chat = f"http://127.0.0.1:8000/staff/chat/{entry.thread_id}/?at={entry.seq}"
    assert f"View in Portal: {chat}" in email.text
    assert f'href="{chat}"' in email.html
    assert "Any time after 3pm." in email.text
    assert email_of(entry).status == S.SENT


def test_an_address_the_esp_rejects_is_a_recorded_permanent_failure(
    fake_postmark, thread, staff, committed, clock
):
    fake_postmark.inactive.add("sarah@example.com")
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    sweep_at(clock, committed, minutes=3)
    delivery = email_of(entry)
    assert delivery.status == S.FAILED
    assert "refused the address" in delivery.last_error
    assert delivery.attempts == 1
    sweep_at(clock, committed, hours=3)
    assert len(fake_postmark.requests) == 1  # never retried


def test_an_esp_outage_is_retried(fake_postmark, thread, staff, committed, clock):
    fake_postmark.fail_next(500)
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    sweep_at(clock, committed, minutes=3)
    assert email_of(entry).status == S.QUEUED
    assert "500" in email_of(entry).last_error
    sweep_at(clock, committed, minutes=1)
    assert email_of(entry).status == S.SENT
    assert len(fake_postmark.emails) == 1


def test_without_an_esp_email_goes_to_the_configured_backend(thread, staff, committed, clock):
    from django.core import mail

    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Local mail")
    sweep_at(clock, committed, minutes=3)
    (message,) = mail.outbox  # locmem in tests, console under `make run`
    assert "Local mail" in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "View in Portal" in html
    assert email_of(entry).provider_id == message.extra_headers["Message-ID"]


def test_the_reply_address_names_its_thread_and_side_and_cannot_be_forged(thread, other_thread):
    address = reply_address(thread.pk)
    parsed = parse_reply_address(address)
    assert (parsed.thread_id, parsed.side) == (thread.pk, "customer")
    assert parse_reply_address(f"Sarah <{address.upper()}>").thread_id == thread.pk
    staff = parse_reply_address(reply_address(thread.pk, STAFF_SIDE))
    assert (staff.thread_id, staff.side) == (thread.pk, "staff")
    forged = address.replace(f"reply+{thread.pk}.", f"reply+{other_thread.pk}.")
    assert parse_reply_address(forged) is None
    # A customer cannot make their address into the staff one by adding the "s".
    assert parse_reply_address(address.replace("reply+", "reply+s")) is None
    assert parse_reply_address("reply+1.x@elsewhere.example") is None
    assert parse_reply_address("someone@porchlight.localhost") is None
    assert parse_reply_address("reply+\u0661.abc@porchlight.localhost") is None


# -- delivery status from the ESP's tracking webhook -------------------------------------------


def post_tracking(client, event: dict):
    auth = base64.b64encode(b"postmark:webhook-secret").decode()
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def sent_email(fake_postmark, thread, staff, committed, clock) -> Delivery:
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    sweep_at(clock, committed, minutes=3)
    return email_of(entry)


def test_the_esps_delivery_event_marks_it_delivered_and_a_late_bounce_changes_nothing(
    client, fake_postmark, thread, staff, committed, clock
):
    delivery = sent_email(fake_postmark, thread, staff, committed, clock)
    delivered = {
        "RecordType": "Delivery",
        "MessageID": delivery.provider_id,
        "Recipient": "sarah@example.com",
        "DeliveredAt": "2025-05-15T10:20:00Z",
        "Details": "250 OK",
    }
    assert post_tracking(client, delivered).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == S.DELIVERED

    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": delivery.provider_id,
        "Email": "sarah@example.com",
        "BouncedAt": "2025-05-15T10:21:00Z",
        "Description": "Mailbox does not exist",
        "ID": 42,
    }
    assert post_tracking(client, bounce).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == S.DELIVERED


def test_a_bounce_fails_a_sent_email_with_its_reason(
    client, fake_postmark, thread, staff, committed, clock
):
    delivery = sent_email(fake_postmark, thread, staff, committed, clock)
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": delivery.provider_id,
        "Email": "sarah@example.com",
        "BouncedAt": "2025-05-15T10:21:00Z",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "ID": 42,
    }
    assert post_tracking(client, bounce).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == S.FAILED
    assert "unknown user" in delivery.last_error


def test_tracking_webhooks_need_the_shared_secret(client, fake_postmark):
    response = client.post(
        "/anymail/postmark/tracking/", data="{}", content_type="application/json"
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_without_a_webhook_secret_forged_bounces_are_refused(
    client, fake_postmark, thread, staff, committed, clock, settings, caplog
):
    delivery = sent_email(fake_postmark, thread, staff, committed, clock)
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
    forged = {"RecordType": "Bounce", "Type": "HardBounce", "MessageID": delivery.provider_id}
    assert post_tracking(client, forged).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == S.SENT
    assert "ANYMAIL_WEBHOOK_SECRET is not set" in caplog.text


@pytest.mark.parametrize("esp", ["mailgun", "sendgrid", "amazon_ses", "mandrill", "nope"])
def test_only_the_configured_esps_webhooks_answer(client, fake_postmark, esp):
    for kind in ("tracking", "inbound"):
        response = client.post(
            f"/anymail/{esp}/{kind}/", data="{}", content_type="application/json"
        )
        assert response.status_code == 404


def test_without_an_esp_no_email_webhook_answers(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(
        "/anymail/postmark/tracking/", data="{}", content_type="application/json"
    )
    assert response.status_code == 404


def test_read_receipts_stay_honest_the_customer_reading_does_not_mark_email_delivered(
    fake_postmark, thread, staff, committed, clock
):
    delivery = sent_email(fake_postmark, thread, staff, committed, clock)
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    delivery.refresh_from_db()
    assert delivery.status == S.SENT


def test_an_urgent_messages_email_does_not_carry_held_ones_out_early(
    fake_postmark, thread, staff, committed, clock
):
    clock.move_to(dt.datetime(2025, 5, 16, 3, 0, tzinfo=dt.UTC))  # 11pm: quiet hours
    with committed():
        held = actions.post_staff_message(thread=thread, author=staff, body="Invoice is ready")
        urgent = actions.post_automated_message(thread=thread, body="Crew is here", urgent=True)
    sweep_at(clock, committed, minutes=3)
    (email,) = fake_postmark.emails
    assert "Crew is here" in email.text and "Invoice is ready" not in email.text
    assert email_of(urgent).status == S.SENT
    assert email_of(held).status == S.HELD


def test_a_bounce_with_nul_characters_still_fails_the_email_not_a_500(
    client, fake_postmark, thread, staff, committed, clock
):
    # Found by the fuzzing of tests/reliability (R4): PostgreSQL refuses NUL in text.
    delivery = sent_email(fake_postmark, thread, staff, committed, clock)
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": delivery.provider_id + "\x00",
        "Email": "sarah@example.com",
        "BouncedAt": "2025-05-15T10:21:00Z",
        "Description": "Mailbox\x00 does not exist",
        "ID": 43,
    }
    assert post_tracking(client, bounce).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == S.FAILED
