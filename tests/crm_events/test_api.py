"""The CRM event API: signed, idempotent on webhook-id, complete validation before any write,
RFC 9457 problems, never a 5xx."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection

from crm_events.models import ApiEvent, Appointment, Call, Contract, Estimate, Invoice
from messaging.models import Entry
from tests.crm_events.conftest import SECRET, invoice_event, signed_headers

PROBLEM = "application/problem+json"


def _written():
    return (
        Entry.objects.count(),
        Invoice.objects.count(),
        Estimate.objects.count(),
        Appointment.objects.count(),
        Call.objects.count(),
        ApiEvent.objects.count(),
    )


@pytest.fixture
def sarah(customer, project, thread):
    return customer


def test_a_signed_invoice_sent_posted_three_times_makes_one_invoice_and_one_card(crm, sarah):
    answers = [crm.post(invoice_event(), msg_id="msg_2041") for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert answers[0].content == answers[1].content == answers[2].content
    body = answers[0].json()
    assert body["record"] == "/invoices/2041/" and body["result"] == "applied"
    invoice = Invoice.objects.get()
    assert str(invoice.total) == "4200.00" and invoice.status == "sent"
    (card,) = Entry.objects.filter(kind=Entry.Kind.EVENT_CARD)
    assert card.body == "Invoice #2041 sent — $4,200"
    assert card.link_url == "/invoices/2041/" and card.seq == body["entry_seq"]


def test_the_same_invoice_under_a_new_webhook_id_still_makes_one_card(crm, sarah):
    crm.post(invoice_event())
    assert crm.post(invoice_event()).status_code == 200
    assert Entry.objects.filter(kind=Entry.Kind.EVENT_CARD).count() == 1


def test_a_webhook_id_reused_for_another_event_is_refused(crm, sarah):
    crm.post(invoice_event(), msg_id="msg_1")
    other = invoice_event()
    other["data"]["due_on"] = "2026-06-30"
    response = crm.post(other, msg_id="msg_1")
    assert response.status_code == 422
    assert response.json()["type"].endswith("webhook-id-reused")


def test_the_customer_may_be_named_by_phone_in_any_format_or_by_id(crm, sarah):
    event = invoice_event(customer={"phone": "(555) 555-0123"})
    assert crm.post(event).status_code == 200
    event = invoice_event(customer={"id": sarah.pk})
    assert crm.post(event).status_code == 200


def test_invoice_paid_and_voided_cards(crm, sarah):
    crm.post(invoice_event())
    paid = {
        "type": "invoice.paid",
        "customer": {"email": "sarah@example.com"},
        "data": {"number": "2041"},
    }
    assert crm.post(paid).status_code == 200
    assert Invoice.objects.get().status == "paid"
    assert Entry.objects.filter(body="Invoice #2041 paid").count() == 1
    voided = {**paid, "type": "invoice.voided"}
    assert crm.post(voided).status_code == 200
    assert Entry.objects.filter(body="Invoice #2041 voided").count() == 1


def test_estimates_contracts_and_appointments_post_their_cards(crm, sarah):
    who = {"customer": {"email": "sarah@example.com"}, "project": "PRJ-1042"}
    events = [
        {
            "type": "estimate.sent",
            **who,
            "data": {
                "number": "311",
                "total": "9800",
                "currency": "USD",
                "valid_until": "2031-06-30",
                "lines": [
                    {"description": "Screen", "unit_price": "6200"},
                    {"description": "Pergola", "unit_price": "3600"},
                ],
            },
        },
        {"type": "estimate.approved", **who, "data": {"number": "311"}},
        {
            "type": "contract.sent",
            **who,
            "data": {"number": "C-12", "title": "Deck build agreement"},
        },
        {
            "type": "appointment.scheduled",
            **who,
            "data": {
                "id": "APT-77",
                "title": "Deck install",
                "starts_at": "2031-05-15T08:00:00-04:00",
                "ends_at": "2031-05-15T09:00:00-04:00",
            },
        },
        {
            "type": "appointment.rescheduled",
            **who,
            "data": {
                "id": "APT-77",
                "starts_at": "2031-05-16T13:00:00-04:00",
                "ends_at": "2031-05-16T15:30:00-04:00",
            },
        },
        {"type": "appointment.cancelled", **who, "data": {"id": "APT-77"}},
    ]
    for event in events:
        response = crm.post(event)
        assert response.status_code == 200, response.content
    assert list(Entry.objects.order_by("seq").values_list("body", flat=True)) == [
        "Estimate #311 sent — $9,800",
        "Estimate #311 approved",
        "Contract sent — Deck build agreement",
        "Appointment scheduled — Thu May 15, 8–9am",
        "Appointment rescheduled to Fri May 16, 1–3:30pm",
        "Appointment cancelled — Fri May 16, 1–3:30pm",
    ]
    assert Contract.objects.get().status == "sent"
    assert Appointment.objects.get().status == "cancelled"


def test_call_logged_makes_a_marker_and_never_answers_with_the_transcript(crm, sarah):
    event = {
        "type": "call.logged",
        "customer": {"email": "sarah@example.com"},
        "data": {
            "started_at": "2031-05-13T16:12:00-04:00",
            "duration_seconds": 360,
            "direction": "inbound",
            "transcript": "TRANSCRIPT-SECRET cedar stain",
            "id": "CALL-9",
        },
    }
    response = crm.post(event)
    assert response.status_code == 200
    assert b"TRANSCRIPT-SECRET" not in response.content
    assert crm.post(event).status_code == 200  # same CRM id, new delivery: one call
    call = Call.objects.get()
    assert call.entry.kind == Entry.Kind.CALL and call.direction == "inbound"
    assert call.entry.transcript == "TRANSCRIPT-SECRET cedar stain"


def test_message_automated_is_labelled_and_may_be_urgent(crm, sarah):
    event = {
        "type": "message.automated",
        "customer": {"email": "sarah@example.com"},
        "data": {"body": "Crew arriving in 20 minutes.", "urgent": True, "channel": "sms"},
    }
    assert crm.post(event).status_code == 200
    entry = Entry.objects.get()
    assert (entry.kind, entry.urgent, entry.channel) == ("automated", True, "sms")


def test_occurred_at_dates_the_card_when_it_is_in_order(crm, sarah):
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).replace(microsecond=0)
    crm.post(invoice_event(occurred_at=at.isoformat()))
    assert Entry.objects.get().created_at == at
    future = invoice_event(occurred_at="2099-01-01T00:00:00Z")
    future["data"]["number"] = "2042"
    crm.post(future)
    assert Entry.objects.get(body__startswith="Invoice #2042").created_at.year < 2099


def test_occurred_at_with_any_offset_rfc_3339_allows_is_taken(crm, sarah):
    # RFC 3339 (and so the document) allows offsets to ±23:59; PostgreSQL reads at most
    # ±15:59, and refused the card's time as a 500 (found by schemathesis).
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)
    west = dt.timezone(-dt.timedelta(hours=23, minutes=7))
    assert crm.post(invoice_event(occurred_at=at.astimezone(west).isoformat())).status_code == 200
    assert Entry.objects.get().created_at == at
    # Year 1 east of UTC is before year 1 in UTC: no time to date a card by, so it is now.
    early = invoice_event(occurred_at="0001-01-01T00:00:00+05:00")
    early["data"]["number"] = "2042"
    assert crm.post(early).status_code == 200
    assert Entry.objects.get(body__startswith="Invoice #2042").created_at > at


def test_times_in_the_data_with_any_offset_are_taken(crm, sarah):
    visit = {
        "type": "appointment.scheduled",
        "customer": {"email": "sarah@example.com"},
        "project": "PRJ-1042",
        "data": {
            "id": "APT-77",
            "title": "Deck install",
            "starts_at": "2031-05-14T08:53:00-23:07",
            "ends_at": "2031-05-14T09:53:00-23:07",
        },
    }
    call = {
        "type": "call.logged",
        "customer": {"email": "sarah@example.com"},
        "data": {"started_at": "2026-05-13T16:12:00-23:07", "duration_seconds": 360},
    }
    assert crm.post(visit).status_code == 200
    assert crm.post(call).status_code == 200
    assert Appointment.objects.get().starts_at == dt.datetime(2031, 5, 15, 8, tzinfo=dt.UTC)
    assert Call.objects.get().started_at == dt.datetime(2026, 5, 14, 15, 19, tzinfo=dt.UTC)


# -- the door: signatures --------------------------------------------------------------------


def test_forged_signatures_are_401_and_write_nothing(crm, client, sarah):
    body = json.dumps(invoice_event()).encode()
    headers = signed_headers(body, msg_id="msg_x", secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==")
    response = client.post(
        "/api/crm/events/", data=body, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 401
    assert _written() == (0, 0, 0, 0, 0, 0)


def test_a_body_changed_after_signing_is_401(crm, client, sarah):
    body = json.dumps(invoice_event()).encode()
    headers = signed_headers(body, msg_id="msg_x")
    tampered = body.replace(b"4200.00", b"1.00")
    response = client.post(
        "/api/crm/events/", data=tampered, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert _written() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_or_future_timestamps_are_401(crm, sarah, minutes):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    response = crm.post(invoice_event(), at=at)
    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"]
    assert _written() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_WEBHOOK_ID": "m", "HTTP_WEBHOOK_TIMESTAMP": "x", "HTTP_WEBHOOK_SIGNATURE": "v1,aaa"},
        {"HTTP_WEBHOOK_ID": "m", "HTTP_WEBHOOK_TIMESTAMP": "1e999", "HTTP_WEBHOOK_SIGNATURE": "v1"},
        {"HTTP_WEBHOOK_ID": "m", "HTTP_WEBHOOK_TIMESTAMP": "0", "HTTP_WEBHOOK_SIGNATURE": "v1,%%%"},
    ],
)
def test_missing_or_malformed_signature_headers_are_401(crm, client, sarah, headers):
    response = client.post(
        "/api/crm/events/", data=b"{}", content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_without_a_secret_configured_everything_is_refused_and_logged(crm, settings, sarah, caplog):
    settings.CRM_WEBHOOK_SECRET = ""
    response = crm.post(invoice_event())
    assert response.status_code == 401
    assert "no secret" in response.json()["detail"]
    assert "CRM_WEBHOOK_SECRET is not set" in caplog.text
    assert _written() == (0, 0, 0, 0, 0, 0)


# -- bad input -------------------------------------------------------------------------------


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert _written() == (0, 0, 0, 0, 0, 0)
    return problem


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"customer": {"email": "nobody@example.com"}}, "No customer has email nobody@example.com"),
        ({"customer": {"phone": "not a phone"}}, "is not a phone number"),
        ({"customer": {"email": "sarah@example.com", "id": 1}}, "exactly one of email"),
        ({"project": "PRJ-9999"}, "No project is coded PRJ-9999"),
        ({"project": "PRJ-1043"}, "belongs to another customer"),
        ({"type": "invoice.refunded"}, "does not match any of the expected tags"),
    ],
)
def test_unknown_customers_projects_and_types_are_4xx_with_the_reason(
    crm, sarah, other_project, change, reason
):
    problem = _problem(crm.post(invoice_event(**change)), 422)
    assert reason in problem["detail"]


@pytest.mark.parametrize(
    "data_change, reason",
    [
        ({"total": "-5.00"}, "data.total"),
        ({"total": "lots"}, "data.total"),
        ({"total": "4200.001"}, "data.total"),
        ({"total": "1e400"}, "data.total"),
        ({"total": "NaN"}, "data.total"),
        ({"total": 10**30}, "data.total"),
        ({"total": "4100.00"}, "does not match its lines, which add up to 4200.00"),
        ({"lines": []}, "data.lines"),
        ({"lines": [{"description": "x", "unit_price": "-1"}]}, "unit_price"),
        ({"lines": [{"description": "x", "quantity": "0", "unit_price": "1"}]}, "quantity"),
        ({"lines": [{"description": "\u0000", "unit_price": "1"}]}, "control characters"),
        ({"number": "20\u000041"}, "data.number: must be 1 to 40 letters"),
        ({"currency": "usd"}, "data.currency"),
        ({"currency": "XYZ"}, "is not a currency code"),
        ({"due_on": "next week"}, "data.due_on"),
        ({"surprise": True}, "data.surprise"),
    ],
)
def test_bad_invoice_data_is_422_with_the_field_and_writes_nothing(crm, sarah, data_change, reason):
    event = invoice_event()
    event["data"].update(data_change)
    problem = _problem(crm.post(event), 422)
    assert reason in problem["detail"]


def test_a_duplicate_invoice_number_with_different_content_is_409(crm, sarah, other_customer):
    crm.post(invoice_event())
    before = _written()
    changed = invoice_event()
    changed["data"]["lines"][0]["description"] = "Cedar decking"
    response = crm.post(changed)
    assert response.status_code == 409
    assert "already exists with different content" in response.json()["detail"]
    # Daniel cannot take Sarah's number either.
    response = crm.post(invoice_event(customer={"email": "daniel@example.com"}, project=None))
    assert response.status_code == 409
    assert _written() == before


def test_an_appointment_ending_before_it_starts_is_422(crm, sarah):
    event = {
        "type": "appointment.scheduled",
        "customer": {"email": "sarah@example.com"},
        "data": {
            "id": "A1",
            "title": "Visit",
            "starts_at": "2031-05-15T09:00:00-04:00",
            "ends_at": "2031-05-15T08:00:00-04:00",
        },
    }
    assert "must end after it starts" in _problem(crm.post(event), 422)["detail"]
    event["data"]["ends_at"] = "2031-05-15T10:00:00"  # no offset
    _problem(crm.post(event), 422)


def test_paying_an_invoice_that_does_not_exist_is_422(crm, sarah):
    event = {
        "type": "invoice.paid",
        "customer": {"email": "sarah@example.com"},
        "data": {"number": "1"},
    }
    assert "has no invoice #1" in _problem(crm.post(event), 422)["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b"null",
        b'"invoice.sent"',
        b'{"type": 5}',
        b'{"type": "invoice.sent", "customer": "sarah", "data": []}',
        b'{"type": "invoice.sent", "customer": {"id": 99999999999999999999999999}, "data": {}}',
        b'{"type": "call.logged", "customer": {"id": 1}, "data": '
        b'{"started_at": "2031-01-01T00:00:00Z", "duration_seconds": 1e308}}',
        b'{"type": "message.automated", "customer": {"id": 1}, "data": {"body": "'
        + b"x" * 6000
        + b'"}}',
        b'{"type": "\\u0000"}',
        ("{" * 5000 + "}" * 5000).encode(),
        b'{"a": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_bodies_are_4xx_problems_never_500(crm, sarah, body):
    response = crm.post(body)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"] == PROBLEM
    assert _written() == (0, 0, 0, 0, 0, 0)


def test_a_body_that_is_not_utf8_is_refused(crm, client, sarah):
    body = b'{"type": "\xff"}'
    headers = {
        "HTTP_WEBHOOK_ID": "m",
        "HTTP_WEBHOOK_TIMESTAMP": "0",
        "HTTP_WEBHOOK_SIGNATURE": "v1,AA==",
    }
    response = client.post(
        "/api/crm/events/", data=body, content_type="application/json", **headers
    )
    assert response.status_code == 401


def test_get_is_not_allowed(crm):
    assert crm.client.get("/api/crm/events/").status_code == 405


def test_the_openapi_document_describes_the_api(client):
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    operation = schema["paths"]["/api/crm/events/"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "409", "422"}
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert schema["components"]["securitySchemes"]["StandardWebhookSignature"]["name"] == (
        "webhook-signature"
    )
    names = set(schema["components"]["schemas"])
    assert {"InvoiceSentEvent", "AppointmentScheduledEvent", "CallLoggedEvent"} <= names


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_make_one_record_and_one_card(settings, customer, project, thread):
    from django.test import Client

    settings.CRM_WEBHOOK_SECRET = SECRET
    body = json.dumps(invoice_event()).encode()
    headers = signed_headers(body, msg_id="msg_race")
    barrier = threading.Barrier(4)
    answers = []

    def deliver():
        try:
            barrier.wait()
            response = Client().post(
                "/api/crm/events/", data=body, content_type="application/json", **headers
            )
            answers.append((response.status_code, response.content))
        finally:
            connection.close()

    workers = [threading.Thread(target=deliver) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(answers) == 4
    assert {status for status, _ in answers} == {200}
    assert len({content for _, content in answers}) == 1
    assert Invoice.objects.count() == 1
    assert ApiEvent.objects.count() == 1
    assert Entry.objects.filter(kind=Entry.Kind.EVENT_CARD).count() == 1


def test_an_appointment_scheduled_through_the_api_shows_on_her_schedule_only(
    crm, sarah, client, other_customer
):
    event = {
        "type": "appointment.scheduled",
        "customer": {"email": "sarah@example.com"},
        "project": "PRJ-1042",
        "data": {
            "id": "APT-90",
            "title": "Railing inspection",
            "starts_at": "2031-05-15T08:00:00-04:00",
            "ends_at": "2031-05-15T09:00:00-04:00",
        },
    }
    assert crm.post(event).status_code == 200
    client.force_login(sarah.user)
    schedule = client.get("/schedule/").content.decode()
    assert "Railing inspection" in schedule
    client.force_login(other_customer.user)
    assert "Railing inspection" not in client.get("/schedule/").content.decode()


# -- the ingest table (issue 17) -------------------------------------------------------------


def test_every_event_type_of_the_schema_has_its_verb_in_the_ingest_table():
    from crm_events import ingest
    from crm_events.schemas import EVENT_TYPES

    assert set(ingest.EVENTS) == set(EVENT_TYPES)


def test_each_answer_names_the_card_its_event_posted(crm, sarah):
    crm.post(invoice_event())
    paid = {"type": "invoice.paid", "customer": {"email": "sarah@example.com"}}
    answer = crm.post({**paid, "data": {"number": "2041"}}).json()
    card = Entry.objects.get(body="Invoice #2041 paid")
    assert answer["entry_seq"] == card.seq and answer["record"] == "/invoices/2041/"


def test_an_event_naming_a_record_with_another_customers_project_is_refused(
    crm, sarah, other_project
):
    crm.post(invoice_event())
    before = _written()
    paid = {
        "type": "invoice.paid",
        "customer": {"email": "sarah@example.com"},
        "project": "PRJ-1043",
        "data": {"number": "2041"},
    }
    response = crm.post(paid)
    assert response.status_code == 422
    assert response.json()["type"].endswith("wrong-project")
    assert "belongs to another customer" in response.json()["detail"]
    assert _written() == before and Invoice.objects.get().status == "sent"


# -- what the document promises (issue 18, items 13-15) --------------------------------------


def _document_validator(client, component: str):
    import jsonschema_rs

    document = client.get("/api/openapi.json").json()
    root = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root)


@pytest.mark.parametrize(
    "change",
    [
        {"customer": {}},
        {"customer": {"email": None}},
        {"customer": {"email": "sarah@example.com", "phone": "+15555550123"}},
        {"data": {**invoice_event()["data"], "total": 4200}},
        {"data": {**invoice_event()["data"], "total": "4,200.00"}},
        {"data": {**invoice_event()["data"], "total": "-1"}},
        {"data": {**invoice_event()["data"], "currency": "XYZ"}},
        {"data": {**invoice_event()["data"], "number": "A/B"}},
    ],
)
def test_what_the_document_refuses_the_server_refuses_too(crm, client, sarah, change):
    event = invoice_event(**change)
    assert not _document_validator(client, "InvoiceSentEvent").is_valid(event)
    _problem(crm.post(event), 422)


@pytest.mark.parametrize("body", ["", "   ", "\u3000\n", "Crew \x01 on the way", "\x00"])
def test_blank_or_control_character_bodies_are_refused_by_the_document_and_the_server(
    crm, client, sarah, body
):
    event = {
        "type": "message.automated",
        "customer": {"email": "sarah@example.com"},
        "data": {"body": body},
    }
    assert not _document_validator(client, "MessageAutomatedEvent").is_valid(event)
    problem = _problem(crm.post(event), 422)
    assert problem["errors"][0]["field"] == "data.body"


def test_the_document_names_the_customer_by_exactly_one_of_email_phone_or_id(client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["CustomerRef"]
    assert schema["oneOf"] == [
        {"required": ["email"]},
        {"required": ["phone"]},
        {"required": ["id"]},
    ]
    validator = _document_validator(client, "CustomerRef")
    assert validator.is_valid({"phone": "(555) 555-0123"})
    assert not validator.is_valid({"id": 3, "email": "sarah@example.com"})


def test_money_in_the_document_is_a_decimal_string(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    price = schemas["LineIn"]["properties"]["unit_price"]
    assert price["type"] == "string" and price["pattern"].startswith("^")
    validator = _document_validator(client, "LineIn")
    assert validator.is_valid({"description": "Stain", "unit_price": "500.20"})
    assert not validator.is_valid({"description": "Stain", "unit_price": 500.2})


def test_every_refusal_in_the_document_is_the_one_problem_component(client):
    document = client.get("/api/openapi.json").json()
    responses = document["paths"]["/api/crm/events/"]["post"]["responses"]
    for status in ("400", "401", "409", "422"):
        assert responses[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert set(document["components"]["schemas"]["FieldError"]["properties"]) == {
        "field",
        "message",
    }


def test_a_field_error_names_the_documented_dotted_path(crm, sarah):
    event = invoice_event()
    event["data"]["total"] = "lots"
    problem = _problem(crm.post(event), 422)
    assert problem["errors"] == [
        {
            "field": "data.total",
            "message": "must be a decimal string such as 4200.00: at most 2 places, never negative",
        }
    ]


def test_a_field_named_body_keeps_its_place_in_the_path(crm, sarah):
    event = {
        "type": "message.automated",
        "customer": {"email": "sarah@example.com"},
        "data": {"body": 5},
    }
    problem = _problem(crm.post(event), 422)
    assert [e["field"] for e in problem["errors"]] == ["data.body"]


@pytest.mark.parametrize("shape", ["{}.999", "{}e0", "+{}", "{}.0", "0{}"])
def test_a_webhook_timestamp_that_is_not_integer_seconds_is_refused(crm, client, sarah, shape):
    body = json.dumps(invoice_event()).encode()
    headers = signed_headers(body, msg_id="msg_ts")
    headers["HTTP_WEBHOOK_TIMESTAMP"] = shape.format(headers["HTTP_WEBHOOK_TIMESTAMP"])
    response = client.post(
        "/api/crm/events/", data=body, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert "integer Unix seconds" in response.json()["detail"]
    assert _written() == (0, 0, 0, 0, 0, 0)


def test_a_webhook_id_over_200_characters_is_400_with_the_reason(crm, sarah):
    response = crm.post(invoice_event(), msg_id="m" * 201)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:porchlight:problem:invalid-webhook-id"
    assert "longer than 200 characters" in problem["detail"]
    assert _written() == (0, 0, 0, 0, 0, 0)
    assert crm.post(invoice_event(), msg_id="m" * 200).status_code == 200
