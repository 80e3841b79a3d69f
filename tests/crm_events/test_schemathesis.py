"""The OpenAPI document against the API itself: schemathesis generates events from
/api/openapi.json (valid ones and invalid ones), each is signed correctly so it reaches the
handlers, not just the signature check, and every answer must be no 5xx and conform to the
document (status, content type, body schema). In process, through WSGI, on the test
database; bounded in examples so it stays well under a minute."""

from __future__ import annotations

import json
import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.crm_events.conftest import SECRET, signed_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def operation(db):
    # As Django's test client does: requests inside a test must not close the test's
    # connection (and with it, its transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
        yield schema["/api/crm/events/"]["POST"]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _send(case, sarah_pick: bool):
    body = case.body
    if sarah_pick and isinstance(body, dict) and isinstance(body.get("customer"), dict):
        # Aim most generated events at a real customer and project, so they get past the
        # lookups into the handlers and actions.
        body = {**body, "customer": {"email": "sarah@example.com"}}
        if "project" in body:
            body["project"] = "PRJ-1042"
    raw = json.dumps(body, default=str).encode()
    headers = {
        key.removeprefix("HTTP_").replace("_", "-").lower(): value
        for key, value in signed_headers(raw, msg_id=f"msg_{uuid.uuid4().hex}").items()
    }
    headers["content-type"] = "application/json"
    response = case.call(headers=headers, data=raw)
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


@pytest.mark.parametrize(
    "mode, examples",
    [(schemathesis.GenerationMode.POSITIVE, 150), (schemathesis.GenerationMode.NEGATIVE, 100)],
)
def test_generated_events_never_get_a_5xx_and_answers_match_the_document(
    operation, mode, examples, customer, project, thread, other_customer, django_settings
):
    django_settings.CRM_WEBHOOK_SECRET = SECRET
    statuses = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), aim=st.booleans())
    def run(case, aim):
        statuses.append(_send(case, aim).status_code)

    run()
    assert statuses and max(statuses) < 500
    if mode == schemathesis.GenerationMode.POSITIVE:
        assert 200 in statuses  # some generated events were applied, not only refused


@pytest.fixture
def django_settings(settings):
    return settings
