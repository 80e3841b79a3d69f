"""/api/openapi.json describes the outbound events under `webhooks` (OpenAPI 3.1), and the
bodies the portal really sends conform to it."""

from __future__ import annotations

import datetime as dt
import io
import json

import jsonschema_rs
import pytest
from django.utils import timezone
from PIL import Image

from crm_events import actions
from crm_events.actions.requests import Window
from crm_events.models import OutboundEvent
from crm_events.outbound.models import EventType
from crm_events.outbound.openapi import schema_name
from messaging import actions as thread_actions
from messaging.attachments import check_attachment
from messaging.models import Side


@pytest.fixture
def document(client, db):
    return client.get("/api/openapi.json").json()


def _validate(document: dict, event: dict) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name(event['type'])}", **document}
    jsonschema_rs.Draft202012Validator(schema).validate(event)


def test_every_outbound_type_is_a_webhook_with_its_schema_and_signature_headers(document):
    assert document["openapi"].startswith("3.1")
    assert set(document["webhooks"]) == set(EventType.values)
    post = document["webhooks"]["estimate.approved"]["post"]
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) >= {"type", "id", "occurred_at", "customer", "data"}
    # The inbound API's own components are untouched.
    assert "Problem" in document["components"]["schemas"]


def test_the_bodies_sent_conform_to_the_document(
    document,
    customer,
    project,
    thread,
    staff,
    estimate,
    appointment,
    crm_endpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        thread_actions.post_customer_reply(customer=customer, body="Hi", channel="sms")
        actions.decide_estimate(
            estimate=estimate,
            approve=True,
            by_customer=True,
            signer_name="Sarah Mitchell",
            agreed=True,
            ip_address="203.0.113.7",
        )
        actions.confirm_appointment(appointment=appointment)
        actions.ask_to_reschedule(appointment=appointment, note="", idempotency_key="k")
        thread_actions.post_staff_message(thread=thread, author=staff, body="Noted")
        thread_actions.mark_read(thread=thread, side=Side.CUSTOMER)
        actions.request_work(
            customer=customer,
            description="Replace the back gate",
            address="12 Cedar Lane",
            windows=[Window(date=timezone.localdate() + dt.timedelta(days=3), part="evening")],
            photos=[check_attachment(name="gate.png", content_type="image/png", data=_png())],
            key="request-1",
        )
    sent = [json.loads(e.body) for e in OutboundEvent.objects.all()]
    assert {e["type"] for e in sent} == set(EventType.values) - {
        "estimate.declined",
        "customer.updated",
    }
    for event in sent:
        _validate(document, event)
    assert crm_endpoint.wait_for(len(sent))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 60)).save(out, "PNG")
    return out.getvalue()


def test_a_body_that_breaks_the_schema_is_caught(document):
    # Guards the check above: a wrong body fails it.
    bad = {"type": "conversation.read", "id": "evt_x", "sequence": 0, "data": {}}
    with pytest.raises(jsonschema_rs.ValidationError):
        _validate(document, bad)
