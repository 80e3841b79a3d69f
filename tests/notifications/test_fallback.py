"""A notification that fails for good on one channel goes by the other, once, with a note for
staff: a bounced email goes by SMS, a refused SMS goes by email; never both twice, no loop."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import time_machine

from messaging import actions
from messaging.models import Entry
from notifications.models import Delivery, NotificationPreferences
from notifications.outbound import outbox

pytestmark = pytest.mark.django_db
S = Delivery.Status
DAYTIME = dt.datetime(2025, 5, 15, 14, 15, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock(settings):
    settings.EMAIL_NOTIFICATION_DELAY_SECONDS = 0
    with time_machine.travel(DAYTIME, tick=False) as traveller:
        yield traveller


@pytest.fixture
def email_only(customer):
    """Sarah chose email only (no texts), and no quiet hours get in the way."""
    return NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        sms_enabled=False,
        quiet_hours_enabled=False,
    )


def bounce(client, delivery, description="Mailbox does not exist"):
    auth = base64.b64encode(b"postmark:webhook-secret").decode()
    event = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": delivery.provider_id,
        "Email": delivery.recipient,
        "BouncedAt": "2025-05-15T14:16:00Z",
        "Description": description,
        "ID": 4242,
    }
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def notes(thread) -> list[str]:
    return list(thread.entries.filter(kind=Entry.Kind.INTERNAL_NOTE).values_list("body", flat=True))


def test_a_bounced_email_goes_by_sms_with_a_note_and_so_does_the_next_notification(
    client, fake_twilio, fake_postmark, customer, thread, staff, email_only, committed
):
    with committed():
        first = actions.post_staff_message(
            thread=thread, author=staff, body="Your invoice is ready"
        )
    email = Delivery.objects.get(entry=first, channel="email")
    assert email.status == S.SENT and fake_twilio.messages == []

    with committed():
        assert bounce(client, email).status_code == 200
    email.refresh_from_db()
    assert email.status == S.FAILED
    sms = Delivery.objects.get(entry=first, channel="sms")
    assert (sms.fallback_for, sms.status) == (email, S.SENT)
    assert [m.body for m in fake_twilio.messages] == ["Your invoice is ready"]
    (note,) = notes(thread)
    assert note.startswith("Email to sarah@example.com bounced (Mailbox does not exist)")
    assert note.endswith("— sent by SMS instead.")
    assert NotificationPreferences.objects.get(customer=customer).email_bounced

    # The next message goes straight by SMS: the address bounces.
    with committed():
        second = actions.post_staff_message(thread=thread, author=staff, body="Crew at 8?")
    assert set(Delivery.objects.filter(entry=second).values_list("channel", flat=True)) == {"sms"}
    assert len(fake_postmark.emails) == 1


def test_a_bounce_told_twice_falls_back_once(
    client, fake_twilio, fake_postmark, customer, thread, staff, email_only, committed
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Once")
    email = Delivery.objects.get(entry=entry, channel="email")
    with committed():
        bounce(client, email)
        bounce(client, email)
    assert Delivery.objects.filter(entry=entry, channel="sms").count() == 1
    assert len(fake_twilio.messages) == 1
    assert len(notes(thread)) == 1


def test_a_delivered_email_clears_the_bounce(
    client, fake_twilio, fake_postmark, customer, thread, staff, email_only, committed
):
    prefs = email_only
    prefs.email_bounced_at = DAYTIME
    prefs.save()
    # Staff fixed the address; an email delivered to it says it works again.
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Test")
    # Bouncing: this one went by SMS.
    assert set(Delivery.objects.filter(entry=entry).values_list("channel", flat=True)) == {"sms"}
    prefs.refresh_from_db()
    prefs.email_bounced_at = None
    prefs.save()
    with committed():
        second = actions.post_staff_message(thread=thread, author=staff, body="Again")
    email = Delivery.objects.get(entry=second, channel="email")
    NotificationPreferences.objects.filter(pk=prefs.pk).update(email_bounced_at=DAYTIME)
    auth = base64.b64encode(b"postmark:webhook-secret").decode()
    delivered = {
        "RecordType": "Delivery",
        "MessageID": email.provider_id,
        "Recipient": "sarah@example.com",
        "DeliveredAt": "2025-05-15T14:20:00Z",
        "Details": "250 OK",
    }
    client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(delivered),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )
    assert not NotificationPreferences.objects.get(pk=prefs.pk).email_bounced


def test_an_sms_the_carrier_refuses_for_good_goes_by_email_and_a_failing_email_stops_there(
    fake_twilio, fake_postmark, customer, thread, staff, committed
):
    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        email_enabled=False,
        quiet_hours_enabled=False,
    )
    fake_twilio.fail_number(customer.phone, 30006)  # a landline: never going to work
    fake_postmark.inactive.add("sarah@example.com")  # and the email bounces too
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hello?")
    sms = Delivery.objects.get(entry=entry, channel="sms")
    email = Delivery.objects.get(entry=entry, channel="email")
    assert sms.status == S.FAILED and email.fallback_for == sms and email.status == S.FAILED
    # No third try, no loop: one delivery per channel, and two notes that say what happened.
    assert Delivery.objects.filter(entry=entry).count() == 2
    first, second = notes(thread)
    assert first.startswith("SMS to (555) 555-0123 failed: Twilio 30006")
    assert first.endswith("sent by email instead.")
    assert second.startswith("Email to sarah@example.com failed")
    assert "already goes by SMS" in second


def test_an_undelivered_status_callback_sends_the_message_by_email(
    client, fake_twilio, fake_postmark, customer, thread, staff, committed
):
    from twilio.request_validator import RequestValidator

    NotificationPreferences.objects.create(
        customer=customer,
        time_zone=customer.time_zone,
        email_enabled=False,
        quiet_hours_enabled=False,
    )
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Arriving 8am")
    sms = Delivery.objects.get(entry=entry, channel="sms")
    path = f"/webhooks/twilio/status/?d={sms.pk}"
    data = {"MessageSid": sms.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        f"http://127.0.0.1:8000{path}", data
    )
    with committed():
        assert client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    with committed():
        outbox.sweep_deliveries()
    email = Delivery.objects.get(entry=entry, channel="email")
    assert email.fallback_for == sms and email.status == S.SENT
    assert "was undelivered (Twilio 30003) — sent by email instead." in notes(thread)[0]


def test_a_spam_complaint_keeps_a_delivered_email_delivered_and_stops_further_email(
    client, fake_twilio, fake_postmark, customer, thread, staff, email_only, committed
):
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Newsletter?")
    email = Delivery.objects.get(entry=entry, channel="email")
    auth = base64.b64encode(b"postmark:webhook-secret").decode()

    def tracking(event):
        return client.post(
            "/anymail/postmark/tracking/",
            data=json.dumps(event),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {auth}",
        )

    tracking(
        {
            "RecordType": "Delivery",
            "MessageID": email.provider_id,
            "Recipient": email.recipient,
            "DeliveredAt": "2025-05-15T14:20:00Z",
            "Details": "250 OK",
        }
    )
    complaint = {
        "RecordType": "SpamComplaint",
        "MessageID": email.provider_id,
        "Email": email.recipient,
        "BouncedAt": "2025-05-15T14:30:00Z",
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "ID": 7,
        "Description": "Marked as spam",
    }
    assert tracking(complaint).status_code == 200
    email.refresh_from_db()
    assert email.status == S.DELIVERED  # forward only
    assert NotificationPreferences.objects.get(customer=customer).email_bounced
