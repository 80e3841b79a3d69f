"""Pay and receipts (issue 21): `invoice.sent` may carry an https `payment_url`, shown as
"Pay $4,200 — checkout.stripe.com" on the invoice and its card; each `invoice.paid` is a
payment (once per CRM payment id) with a receipt card, the invoice partially paid until the
balance reaches zero. Also the customer's CRM id, and the estimate fields of `estimate.sent`."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from crm_events.models import ApiEvent, Estimate, Invoice, OutboundEvent, Payment
from messaging import actions as thread_actions
from messaging.models import Entry
from tests.crm_events.conftest import invoice_event

PAY_URL = "https://checkout.stripe.com/c/pay/cs_test_2041"
PROBLEM = "application/problem+json"


@pytest.fixture
def sarah(customer, project, thread):
    return customer


def _sent_with_pay(crm):
    event = invoice_event()
    event["data"]["payment_url"] = PAY_URL
    assert crm.post(event).status_code == 200
    return Invoice.objects.get()


def _paid(crm, **data):
    return crm.post(
        {
            "type": "invoice.paid",
            "customer": {"email": "sarah@example.com"},
            "data": {"number": "2041", **data},
        }
    )


def _written():
    return (Entry.objects.count(), Invoice.objects.count(), Payment.objects.count())


@pytest.mark.parametrize(
    "url",
    [
        "http://checkout.stripe.com/c/pay/1",
        "javascript:alert(1)",
        "https://",
        "https://exa mple.com/",
        "ftp://example.com/pay",
    ],
)
def test_a_payment_url_that_is_not_https_is_refused_naming_the_field(crm, sarah, url):
    event = invoice_event()
    event["data"]["payment_url"] = url
    response = crm.post(event)
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("insecure-url")
    assert problem["errors"][0]["field"] == "data.payment_url"
    assert "https://" in problem["errors"][0]["message"]
    assert _written() == (0, 0, 0) and not ApiEvent.objects.exists()


def test_the_invoice_and_its_card_offer_pay_at_the_processor(crm, sarah, customer_client):
    invoice = _sent_with_pay(crm)
    assert invoice.payment_url == PAY_URL
    card = Entry.objects.get(kind=Entry.Kind.EVENT_CARD)
    assert card.action_url == PAY_URL
    assert card.action_label == "Pay $4,200 — checkout.stripe.com"
    pay_link = (
        f'<a class="card-pay" href="{PAY_URL}" target="_blank" rel="noopener noreferrer">'
        "Pay $4,200 — checkout.stripe.com"
        '<span class="visually-hidden"> (opens in a new tab)</span></a>'
    )
    assert pay_link in customer_client.get("/messages/").content.decode()
    page = customer_client.get("/invoices/2041/").content.decode()
    assert f'href="{PAY_URL}" target="_blank" rel="noopener noreferrer"' in page
    assert "Pay $4,200 — checkout.stripe.com" in page


def test_partial_payments_then_paid_in_full_each_with_a_receipt_card(
    crm, sarah, customer_client, thread
):
    _sent_with_pay(crm)
    receipt = "https://pay.stripe.com/receipts/rcpt_1"
    response = _paid(crm, amount="1000.00", method="card", id="pay_1", receipt_url=receipt)
    assert response.status_code == 200
    invoice = Invoice.objects.get()
    assert invoice.status == Invoice.Status.PARTIALLY_PAID
    assert invoice.amount_paid == Decimal("1000.00") and invoice.balance_due == Decimal("3200.00")
    card = thread.entries.order_by("seq").last()
    assert card.body == "Payment received — $1,000 by card · Balance $3,200"
    assert card.link_url == receipt and response.json()["entry_seq"] == card.seq
    assert card.action_label == "Pay $3,200 — checkout.stripe.com"
    assert card.card_kind == Entry.CardKind.PAYMENT  # "View receipt"
    assert "View receipt" in customer_client.get("/messages/").content.decode()
    page = customer_client.get("/invoices/2041/").content.decode()
    assert "Partially paid" in page and "Balance due" in page and "$3,200" in page
    assert "Pay $3,200 — checkout.stripe.com" in page and f'href="{receipt}"' in page
    project_page = customer_client.get("/project/").content.decode()
    # Partly paid is still an open invoice on My Project.
    assert '<a href="/invoices/2041/">Invoice #2041</a> · $4,200' in project_page
    # The same payment again (another webhook-id) is the same payment.
    assert _paid(crm, amount="1000.00", method="card", id="pay_1").status_code == 200
    assert Payment.objects.count() == 1
    assert thread.entries.filter(body__startswith="Payment received").count() == 1
    # The rest: paid.
    assert _paid(crm, amount="3200.00", method="ach", id="pay_2").status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.balance_due == 0
    last_two = list(thread.entries.order_by("-seq")[:2])[::-1]
    assert [e.body for e in last_two] == [
        "Payment received — $3,200 by ach · Paid in full",
        "Invoice #2041 paid",
    ]
    assert not any(e.action_url for e in last_two)  # nothing left to pay
    assert "Pay $" not in customer_client.get("/invoices/2041/").content.decode()


@pytest.mark.parametrize(
    "data, status, slug",
    [
        ({"amount": "4200.01", "id": "pay_9"}, 422, "overpaid"),
        ({"amount": "0.00", "id": "pay_9"}, 422, "invalid-event"),
        ({"amount": "-5", "id": "pay_9"}, 422, "invalid-event"),
        (
            {"amount": "100.00", "id": "pay_9", "receipt_url": "http://x.example/r"},
            400,
            "insecure-url",
        ),
        ({"amount": "100.00", "id": "pay_9", "method": ""}, 422, "invalid-event"),
    ],
)
def test_a_bad_payment_is_refused_and_writes_nothing(crm, sarah, data, status, slug):
    _sent_with_pay(crm)
    before = _written()
    response = _paid(crm, **data)
    assert response.status_code == status and response.json()["type"].endswith(slug)
    assert _written() == before
    assert Invoice.objects.get().status == Invoice.Status.SENT


def test_a_payment_id_reused_for_another_amount_is_a_conflict(crm, sarah):
    _sent_with_pay(crm)
    _paid(crm, amount="1000.00", id="pay_1")
    before = _written()
    response = _paid(crm, amount="900.00", id="pay_1")
    assert response.status_code == 409 and _written() == before


def test_invoice_paid_without_an_amount_still_pays_it_whole(crm, sarah):
    _sent_with_pay(crm)
    assert _paid(crm).status_code == 200
    assert Invoice.objects.get().status == Invoice.Status.PAID
    assert not Payment.objects.exists()


# -- the customer's CRM id -----------------------------------------------------------------------


def test_the_crm_names_its_customer_id_and_outbound_events_carry_it(
    crm, sarah, thread, crm_endpoint, django_capture_on_commit_callbacks
):
    event = invoice_event(customer={"email": "sarah@example.com", "crm_id": "CUS-88"})
    assert crm.post(event).status_code == 200
    sarah.refresh_from_db()
    assert sarah.crm_id == "CUS-88"
    with django_capture_on_commit_callbacks(execute=True):
        thread_actions.post_customer_reply(customer=sarah, body="Thanks!", channel="portal")
    body = json.loads(OutboundEvent.objects.get(type="message.received").body)
    assert body["customer"] == {"id": sarah.pk, "crm_id": "CUS-88"}


def test_a_crm_id_that_contradicts_the_one_on_file_is_refused(crm, sarah, other_customer):
    crm.post(invoice_event(customer={"email": "sarah@example.com", "crm_id": "CUS-88"}))
    before = _written()
    other = invoice_event(customer={"email": "sarah@example.com", "crm_id": "CUS-99"})
    other["data"]["number"] = "2042"
    response = crm.post(other)
    assert response.status_code == 409 and "CUS-88" in response.json()["detail"]
    taken = invoice_event(customer={"email": "daniel@example.com", "crm_id": "CUS-88"})
    taken["data"]["number"] = "2043"
    taken.pop("project")
    assert crm.post(taken).status_code == 409
    assert _written() == before


# -- estimate.sent: terms and optional lines -----------------------------------------------------


def test_estimate_sent_carries_terms_and_optional_lines_outside_the_total(crm, sarah):
    event = {
        "type": "estimate.sent",
        "customer": {"email": "sarah@example.com"},
        "project": "PRJ-1042",
        "data": {
            "number": "311",
            "total": "9800.00",
            "terms": "50% deposit on approval.",
            "lines": [
                {"description": "Cedar privacy screen", "unit_price": "6200.00"},
                {"description": "Pergola", "unit_price": "3600.00"},
                {"description": "Second coat", "unit_price": "450.00", "optional": True},
            ],
        },
    }
    assert crm.post(event).status_code == 200
    estimate = Estimate.objects.get()
    assert estimate.terms == "50% deposit on approval." and estimate.total == Decimal("9800.00")
    assert [line.optional for line in estimate.lines.all()] == [False, False, True]
    # The same again changes nothing; other terms are version 2.
    assert crm.post(event).status_code == 200
    assert Estimate.objects.get().version == 1
    event["data"]["terms"] = "Payment in full on completion."
    assert crm.post(event).status_code == 200
    assert Estimate.objects.get().version == 2


def test_the_openapi_document_describes_the_new_fields(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "payment_url" in schemas["InvoiceData"]["properties"]
    assert {"amount", "method", "receipt_url", "id"} <= set(schemas["PaymentData"]["properties"])
    assert "terms" in schemas["EstimateData"]["properties"]
    assert "optional" in schemas["EstimateLineIn"]["properties"]
    assert "crm_id" in schemas["CustomerRef"]["properties"]
