"""/api/openapi.json describes the outbound events under `webhooks` (OpenAPI 3.1), and the
bodies the portal really sends conform to it."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from crm_events import actions
from crm_events.models import OutboundEvent
from crm_events.outbound.models import EventType
from crm_events.outbound.openapi import schema_name
from messaging import actions as thread_actions
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
    sent = [json.loads(e.body) for e in OutboundEvent.objects.all()]
    assert {e["type"] for e in sent} == set(EventType.values) - {
        "estimate.declined",
        "customer.updated",
        "request.created",
    }
    for event in sent:
        _validate(document, event)
    assert crm_endpoint.wait_for(len(sent))


def test_a_body_that_breaks_the_schema_is_caught(document):
    # Guards the check above: a wrong body fails it.
    bad = {"type": "conversation.read", "id": "evt_x", "sequence": 0, "data": {}}
    with pytest.raises(jsonschema_rs.ValidationError):
        _validate(document, bad)
