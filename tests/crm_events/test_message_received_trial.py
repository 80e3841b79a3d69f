"""The Done-when trial of issue 21 for `message.received`: the CRM's receiver (verifying with
the official `standardwebhooks` library) is down when Sarah texts a reply through Twilio's real
inbound webhook; it comes back; the outbox's own sweep (what Celery beat runs every
CRM_OUTBOUND_SWEEP_SECONDS) retries when the backoff is due, and the event arrives exactly once.

Time moves with time_machine (the sweep and the claim read the clock), never by editing rows."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from crm_events.models import WebhookDelivery
from crm_events.tasks import sweep_webhooks
from messaging.models import Entry
from tests.crm_events.conftest import OUT_SECRET
from tests.fakes.crm_receiver import FakeCrmReceiver

URL = "/webhooks/twilio/sms/"
SIGNED_URL = f"http://127.0.0.1:8000{URL}"


@pytest.mark.django_db
def test_a_text_while_the_crm_is_down_reaches_it_exactly_once_when_it_is_back(
    client, fake_twilio, customer, thread, settings, committed
):
    # Now, so this test's own check of the signature (timestamps within 5 minutes) agrees.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    receiver = FakeCrmReceiver(secrets=[OUT_SECRET]).start()
    port = receiver._server.server_address[1]
    receiver.stop()  # the CRM is down: its port refuses connections
    settings.CRM_OUTBOUND_URL = f"http://127.0.0.1:{port}/porchlight/events"
    settings.CRM_OUTBOUND_SECRET = [OUT_SECRET]

    with time_machine.travel(start, tick=False):
        form, signature = fake_twilio.inbound(
            SIGNED_URL, sender="+15555550123", body="Can the crew come Friday instead?"
        )
        with committed():
            response = client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code == 200
    entry = Entry.objects.get(kind=Entry.Kind.CUSTOMER_REPLY)
    delivery = WebhookDelivery.objects.select_related("event").get()
    assert delivery.event.type == "message.received"
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error.startswith("Could not connect")

    with FakeCrmReceiver(secrets=[OUT_SECRET], port=port) as crm:
        # Before the backoff is due, beat's sweep sends nothing.
        with time_machine.travel(start + dt.timedelta(seconds=5), tick=False):
            assert sweep_webhooks.apply().get()["queued"] == 0
        assert crm.requests == []
        # Due: the sweep queues it, the task delivers it.
        due = WebhookDelivery.objects.get().next_attempt_at + dt.timedelta(seconds=1)
        with time_machine.travel(due, tick=False):
            assert sweep_webhooks.apply().get()["queued"] == 1
        # Later sweeps, and a replay of the same text, send nothing more.
        with time_machine.travel(due + dt.timedelta(hours=2), tick=False):
            assert sweep_webhooks.apply().get()["queued"] == 0
            with committed():
                assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200

        (request,) = crm.requests
        headers = {k.lower(): v for k, v in request.headers.items()}
        event = Webhook(OUT_SECRET).verify(request.body, headers)
    assert event["type"] == "message.received" and event["id"] == headers["webhook-id"]
    assert event["data"]["entry_id"] == entry.pk and event["data"]["channel"] == "sms"
    assert event["data"]["body"] == "Can the crew come Friday instead?"
    assert list(crm.events) == [event["id"]]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
