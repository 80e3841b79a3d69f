"""R2: providers report late, twice and out of order. Every order of a set of Twilio status
callbacks, and of the email provider's tracking events, each on a fresh Delivery, ends in the
state the first final word named: status only moves forward."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import uuid

import pytest
import time_machine
from django.utils import timezone
from twilio.request_validator import RequestValidator

from messaging import actions
from notifications.models import Delivery

pytestmark = pytest.mark.django_db
S = Delivery.Status
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)  # 10am in New York: nothing held

# Twilio's words, and the final state each names (the others say nothing final).
SMS_WORDS = ["queued", "sent", "delivered", "undelivered", "failed"]
SMS_FINAL = {"delivered": S.DELIVERED, "undelivered": S.FAILED, "failed": S.FAILED}
# Postmark's tracking events (through anymail), and the final state each names. A transient
# bounce is anymail's "deferred": not final, so it changes nothing.
EMAIL_EVENTS = {
    "delivery": {"RecordType": "Delivery", "Details": "250 OK"},
    "open": {"RecordType": "Open", "FirstOpen": True},
    "transient": {"RecordType": "Bounce", "Type": "Transient", "Description": "Try later"},
    "hard-bounce": {"RecordType": "Bounce", "Type": "HardBounce", "Description": "No mailbox"},
}
EMAIL_FINAL = {"delivery": S.DELIVERED, "open": S.DELIVERED, "hard-bounce": S.FAILED}
EMAIL_ROUNDS = 5  # 24 orders x 5 rounds
AUTH = "Basic " + base64.b64encode(b"postmark:webhook-secret").decode()


@pytest.fixture(autouse=True)
def daytime():
    with time_machine.travel(DAYTIME, tick=True):
        yield


def twilio_callback(client, fake_twilio, delivery: Delivery, sid: str, word: str) -> int:
    path = f"/webhooks/twilio/status/?d={delivery.pk}"
    data = {"MessageSid": sid, "MessageStatus": word}
    if word in ("undelivered", "failed"):
        data["ErrorCode"] = "30003"
    # Twilio signs the public URL it called: SITE_URL plus the path.
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        f"http://127.0.0.1:8000{path}", data
    )
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature).status_code


def tracking_event(client, delivery: Delivery, name: str, n: int) -> int:
    event = {
        **EMAIL_EVENTS[name],
        "MessageID": delivery.provider_id,
        "Recipient": delivery.recipient,
        "Email": delivery.recipient,
        "ID": n,
        "DeliveredAt": "2025-05-15T10:20:00Z",
        "BouncedAt": "2025-05-15T10:20:00Z",
        "ReceivedAt": "2025-05-15T10:20:00Z",
    }
    return client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    ).status_code


def sent_row(thread, staff, channel: str, recipient: str, n: int) -> Delivery:
    """A fresh delivery of a fresh entry, as the sender records one the provider accepted
    (its sid or Message-ID)."""
    entry = actions.post_staff_message(
        thread=thread, author=staff, body=f"{channel} {n}", notify=False
    )
    now = timezone.now()
    return Delivery.objects.create(
        entry=entry,
        channel=channel,
        audience="customer",
        recipient=recipient,
        status=S.SENT,
        provider_id=f"SM{uuid.uuid4().hex}" if channel == "sms" else str(uuid.uuid4()),
        attempts=1,
        send_after=now,
        sent_at=now,
        created_at=now,
    )


def final_state(delivery: Delivery) -> tuple[str, bool, bool]:
    """(status, delivered_at set, failed_at set): what staff read under the entry."""
    delivery.refresh_from_db()
    return delivery.status, delivery.delivered_at is not None, delivery.failed_at is not None


def expected_state(status: str) -> tuple[str, bool, bool]:
    return status, status == S.DELIVERED, status == S.FAILED


def test_status_callbacks_in_every_order_end_in_the_first_final_word(
    client, fake_twilio, fake_postmark, customer, thread, staff, committed, figures
):
    runs, answers, wrong = 0, [], []

    # Twilio: all 120 orders of five words, each on a fresh SMS delivery. The first is really
    # sent to the fake Twilio; the rest are recorded as the sender records a sent SMS (sending
    # 120 for real costs ten seconds and shows nothing more).
    sms_orders = list(itertools.permutations(SMS_WORDS))
    with committed():
        entry = actions.post_staff_message(thread=thread, author=staff, body="Really sent")
    real = Delivery.objects.get(entry=entry, channel="sms")
    assert real.status == S.SENT and real.provider_id == fake_twilio.messages[0].sid
    for n, order in enumerate(sms_orders):
        delivery = real if n == 0 else sent_row(thread, staff, "sms", customer.phone, n)
        sid = delivery.provider_id
        if n % 2:
            # Every other run, the callbacks beat the worker's record of the sid.
            Delivery.objects.filter(pk=delivery.pk).update(status=S.SENDING, provider_id="")
        answers += [twilio_callback(client, fake_twilio, delivery, sid, w) for w in order]
        first_final = next(w for w in order if w in SMS_FINAL)
        got, expected = final_state(delivery), expected_state(SMS_FINAL[first_final])
        if got != expected or delivery.provider_id != sid:
            wrong.append((order, got, expected, delivery.provider_id == sid))
        runs += 1
    assert len(fake_twilio.messages) == 1  # callbacks never make the SMS go again

    # The email provider: all 24 orders of four events x 5, each on a fresh sent email.
    email_orders = list(itertools.permutations(EMAIL_EVENTS)) * EMAIL_ROUNDS
    for n, order in enumerate(email_orders):
        delivery = sent_row(thread, staff, "email", customer.email, n)
        answers += [tracking_event(client, delivery, name, i) for i, name in enumerate(order)]
        first_final = next(name for name in order if name in EMAIL_FINAL)
        got, expected = final_state(delivery), expected_state(EMAIL_FINAL[first_final])
        if got != expected:
            wrong.append((order, got, expected))
        runs += 1

    # Every callback and event is answered 200, so no provider retries it.
    assert set(answers) == {200}
    assert wrong == []
    assert runs >= 100
    figures(
        f"{len(sms_orders)} Twilio orders + {len(email_orders)} email-event orders "
        f"({len(answers)} signed callbacks, all 200) -> "
        f"{runs - len(wrong)}/{runs} right final state"
    )
