"""Fixtures for the CRM: a signing CRM, records for Sarah (customer) and Daniel (other
customer), and a clock in the business's day."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import zoneinfo
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook

from crm_events import actions
from tests.factories import ProjectFactory
from tests.fakes.crm_receiver import FakeCrmReceiver

SECRET = "whsec_" + base64.b64encode(b"porchlight-test-key-32-bytes-long").decode()
NY = zoneinfo.ZoneInfo("America/New_York")


def signed_headers(body: bytes, *, msg_id: str, secret: str = SECRET, at=None) -> dict:
    at = at or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body.decode())
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(at.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


class Crm:
    """The contractor's CRM, posting signed events to /api/crm/events/."""

    def __init__(self, client) -> None:
        self.client = client

    def post(self, event: dict | bytes | str, *, msg_id: str | None = None, **sign):
        body = (
            event
            if isinstance(event, bytes)
            else (event.encode() if isinstance(event, str) else json.dumps(event).encode())
        )
        headers = signed_headers(body, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", **sign)
        return self.client.post(
            "/api/crm/events/", data=body, content_type="application/json", **headers
        )


@pytest.fixture
def crm(client, settings):
    settings.CRM_WEBHOOK_SECRET = SECRET
    return Crm(client)


def invoice_event(**overrides) -> dict:
    event = {
        "type": "invoice.sent",
        "customer": {"email": "sarah@example.com"},
        "project": "PRJ-1042",
        "data": {
            "number": "2041",
            "total": "4200.00",
            "currency": "USD",
            "due_on": "2026-05-29",
            "lines": [
                {"description": "Composite decking", "quantity": "1", "unit_price": "3100.00"},
                {"description": "Railing", "quantity": "2", "unit_price": "425.00"},
                {"description": "Haul-away", "quantity": "0.5", "unit_price": "500.00"},
            ],
        },
    }
    event.update(overrides)
    return event


def lines(*amounts: str) -> list[actions.LineData]:
    return [actions.LineData(f"Line {i}", Decimal(1), Decimal(a)) for i, a in enumerate(amounts)]


@pytest.fixture
def other_project(other_customer):
    return ProjectFactory(customer=other_customer, code="PRJ-1043", title="Kitchen Remodel")


@pytest.fixture
def invoice(customer, project, thread):
    return actions.send_invoice(
        customer=customer,
        project=project,
        number="2041",
        lines=lines("3100.00", "850.00", "250.00"),
        currency="USD",
        total=Decimal("4200.00"),
    ).record


@pytest.fixture
def estimate(customer, project, thread):
    return actions.send_estimate(
        customer=customer,
        project=project,
        number="311",
        lines=lines("6200.00", "3600.00"),
        currency="USD",
    ).record


def local(year, month, day, hour, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.fixture
def appointment(customer, project, thread):
    # Thursday May 15 2031, 8–9am in New York; tests travel to the days before it.
    return actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Deck install",
        starts_at=local(2031, 5, 15, 8),
        ends_at=local(2031, 5, 15, 9),
        external_id="APT-77",
        at=local(2031, 5, 12, 9),
    ).record


# -- outbound events to the CRM (crm_events/outbound/) ----------------------------------------

OUT_SECRET = "whsec_" + base64.b64encode(b"outbound-test-key-of-32-bytes-xx").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the-rotated-outbound-key-32-byte").decode()


@pytest.fixture
def receiver():
    with FakeCrmReceiver(secrets=[OUT_SECRET]) as fake:
        yield fake


@pytest.fixture
def crm_endpoint(settings, receiver):
    """CRM_OUTBOUND_URL pointing at the receiver (the operator's choice: http on loopback)."""
    settings.CRM_OUTBOUND_URL = f"{receiver.url}/porchlight/events"
    settings.CRM_OUTBOUND_SECRET = [OUT_SECRET]
    return receiver
