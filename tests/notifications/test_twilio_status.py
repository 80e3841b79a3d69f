"""Twilio's status callback: signed, forward only, 200 for anything well formed."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine
from twilio.request_validator import RequestValidator

from messaging import actions
from notifications.models import Delivery, NotificationPreferences

pytestmark = pytest.mark.django_db
S = Delivery.Status
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent_sms(fake_twilio, thread, staff, committed):
    with time_machine.travel(DAYTIME, tick=False), committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
    delivery = Delivery.objects.get(entry=entry, channel="sms")
    assert delivery.status == S.SENT
    return delivery


def signed_post(client, fake_twilio, path: str, data: dict, *, sign: bool = True):
    # Twilio signs the public URL it called: SITE_URL plus the path.
    url = f"http://127.0.0.1:8000{path}"
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(url, data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature if sign else "forged")


def callback(client, fake_twilio, delivery, status, *, error_code="", sign=True, path=None):
    path = path or f"/webhooks/twilio/status/?d={delivery.pk}"
    data = {"MessageSid": delivery.provider_id, "MessageStatus": status}
    if error_code:
        data["ErrorCode"] = error_code
    return signed_post(client, fake_twilio, path, data, sign=sign)


def test_a_delivered_callback_marks_the_sms_delivered(client, fake_twilio, sent_sms):
    assert callback(client, fake_twilio, sent_sms, "delivered").status_code == 200
    sent_sms.refresh_from_db()
    assert sent_sms.status == S.DELIVERED
    assert sent_sms.delivered_at is not None


def test_a_late_sent_never_overwrites_delivered(client, fake_twilio, sent_sms):
    callback(client, fake_twilio, sent_sms, "delivered")
    assert callback(client, fake_twilio, sent_sms, "sent").status_code == 200
    assert callback(client, fake_twilio, sent_sms, "failed", error_code="30008").status_code == 200
    sent_sms.refresh_from_db()
    assert sent_sms.status == S.DELIVERED


def test_a_carrier_failure_is_recorded_with_its_code(client, fake_twilio, sent_sms):
    callback(client, fake_twilio, sent_sms, "undelivered", error_code="30006")
    sent_sms.refresh_from_db()
    assert sent_sms.status == S.FAILED
    assert sent_sms.last_error == "Carrier reported undelivered (Twilio 30006)"


def test_a_carrier_reported_unsubscribe_opts_the_customer_out_and_emails_instead(
    client, fake_twilio, sent_sms, customer
):
    callback(client, fake_twilio, sent_sms, "failed", error_code="21610")
    assert NotificationPreferences.objects.get(customer=customer).sms_opted_out
    assert Delivery.objects.filter(entry=sent_sms.entry, channel="email").exists()


def test_a_forged_callback_is_refused_and_changes_nothing(client, fake_twilio, sent_sms):
    assert callback(client, fake_twilio, sent_sms, "delivered", sign=False).status_code == 403
    sent_sms.refresh_from_db()
    assert sent_sms.status == S.SENT


def test_without_an_auth_token_every_callback_is_refused_and_changes_nothing(
    client, fake_twilio, sent_sms, customer, settings, caplog
):
    settings.TWILIO_AUTH_TOKEN = ""
    for signed in (True, False):
        response = callback(
            client, fake_twilio, sent_sms, "failed", error_code="21610", sign=signed
        )
        assert response.status_code == 403
    sent_sms.refresh_from_db()
    assert sent_sms.status == S.SENT
    assert not NotificationPreferences.objects.filter(customer=customer).exists()
    assert "TWILIO_AUTH_TOKEN is not configured" in caplog.text


def test_an_unknown_message_still_answers_200_so_twilio_stops_retrying(
    client, fake_twilio, sent_sms
):
    sent_sms.provider_id = "SM" + "0" * 32
    response = callback(client, fake_twilio, sent_sms, "delivered", path="/webhooks/twilio/status/")
    assert response.status_code == 200
    assert Delivery.objects.get(pk=sent_sms.pk).status == S.SENT


def test_a_callback_that_beats_our_own_record_of_the_sid_is_matched_by_delivery_id(
    client, fake_twilio, sent_sms
):
    # Twilio can call back before the worker has stored the sid it was given.
    sid = sent_sms.provider_id
    Delivery.objects.filter(pk=sent_sms.pk).update(status=S.SENDING, provider_id="")
    sent_sms.provider_id = sid
    callback(client, fake_twilio, sent_sms, "delivered")
    sent_sms.refresh_from_db()
    assert (sent_sms.status, sent_sms.provider_id) == (S.DELIVERED, sid)


def test_a_callback_naming_another_messages_sid_changes_nothing(client, fake_twilio, sent_sms):
    sent_sms.provider_id = "SM" + "f" * 32
    callback(client, fake_twilio, sent_sms, "failed", error_code="30003")
    assert Delivery.objects.get(pk=sent_sms.pk).status == S.SENT


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/webhooks/twilio/status/", {"MessageStatus": "sent"}),
        ("/webhooks/twilio/status/?d=x", {}),
        # A MessageSid longer than the column holds, a non-ASCII digit, NUL bytes.
        ("/webhooks/twilio/status/", {"MessageSid": "SM" + "a" * 199, "MessageStatus": "sent"}),
        ("/webhooks/twilio/status/", {"MessageSid": "S" * 10_000, "MessageStatus": "sent"}),
        (
            "/webhooks/twilio/status/?d=%C2%B2",
            {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"},
        ),
        (
            "/webhooks/twilio/status/?d=1%002",
            {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"},
        ),
        ("/webhooks/twilio/status/", {"MessageSid": "SM\x00" + "a" * 31, "MessageStatus": "sent"}),
        ("/webhooks/twilio/status/", {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent\x00"}),
        (
            "/webhooks/twilio/status/",
            {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent", "ErrorCode": "3\x000"},
        ),
    ],
)
def test_a_signed_but_malformed_callback_is_a_bad_request_that_changes_nothing(
    client, fake_twilio, sent_sms, path, data
):
    assert signed_post(client, fake_twilio, path, data).status_code == 400
    assert Delivery.objects.get(pk=sent_sms.pk).status == S.SENT


def test_the_status_webhook_takes_only_posts(client):
    assert client.get("/webhooks/twilio/status/").status_code == 405


def test_the_fake_twilio_calls_back_and_the_status_reaches_delivered(
    live_server, fake_twilio, settings, thread, staff
):
    # The fake, like Twilio, calls the StatusCallback URL over HTTP, signed.
    settings.SITE_URL = live_server.url
    fake_twilio.callbacks = True
    with time_machine.travel(DAYTIME, tick=True):
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hi")
        delivery = Delivery.objects.get(entry=entry, channel="sms")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status == S.DELIVERED:
                break
            time.sleep(0.05)
    assert delivery.status == S.DELIVERED
