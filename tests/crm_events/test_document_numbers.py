"""What an invoice or estimate number is (issue 18, item 9): it becomes the document's address
(/invoices/<number>/) and its PDF's file name, so it is 1 to 40 letters, digits, "-", "_" or
".", starting with a letter or digit. Anything else is refused where it comes in (the event
API with a 422, the admin with a form error), and an address holding anything else is a 404
before any view or query runs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import Resolver404, resolve

from crm_events.models import Estimate, Invoice
from messaging.models import Entry
from tests.crm_events.conftest import invoice_event


@pytest.fixture
def sarah(customer, project, thread):
    return customer


@pytest.mark.parametrize(
    "number", ["A/B", "1\n2", "..", ".", "-12", "#12", "12 34", "12?", "x" * 41, "Nº12"]
)
def test_an_invoice_number_outside_the_rule_is_refused_with_the_reason(crm, sarah, number):
    event = invoice_event()
    event["data"]["number"] = number
    response = crm.post(event)
    assert response.status_code == 422, response.content
    problem = response.json()
    assert problem["errors"][0]["field"] == "data.number"
    assert "1 to 40 letters, digits" in problem["detail"]
    assert not Invoice.objects.exists() and not Entry.objects.exists()


def test_an_estimate_number_outside_the_rule_is_refused_too(crm, sarah):
    event = {
        "type": "estimate.sent",
        "customer": {"email": "sarah@example.com"},
        "data": {"number": "E/1", "lines": [{"description": "Pergola", "unit_price": "3600"}]},
    }
    response = crm.post(event)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "data.number"
    assert not Estimate.objects.exists()


def test_a_number_with_dots_dashes_and_underscores_opens_its_page_and_pdf(
    crm, sarah, customer_client
):
    event = invoice_event()
    event["data"]["number"] = "INV-2041.a_1"
    assert crm.post(event).status_code == 200
    card = Entry.objects.get()
    assert card.link_url == "/invoices/INV-2041.a_1/"
    assert customer_client.get(card.link_url).status_code == 200
    pdf = customer_client.get("/invoices/INV-2041.a_1/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Disposition"] == 'inline; filename="invoice-INV-2041.a_1.pdf"'


ADDRESSES = [
    "/invoices/{n}/",
    "/invoices/{n}/pdf/",
    "/estimates/{n}/",
    "/estimates/{n}/pdf/",
    "/staff/invoices/{n}/",
    "/staff/invoices/{n}/pdf/",
    "/staff/estimates/{n}/",
    "/staff/estimates/{n}/pdf/",
]


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("number", ["\x00", "1\n2", "..", "a b"])
def test_an_address_with_a_number_outside_the_rule_reaches_no_view(address, number):
    with pytest.raises(Resolver404):
        resolve(address.format(n=number))


@pytest.mark.parametrize("address", ["/invoices/%00/", "/estimates/%00/pdf/"])
def test_a_nul_in_a_customers_document_address_is_404(customer_client, invoice, address):
    assert customer_client.get(address).status_code == 404


@pytest.mark.parametrize("address", ["/staff/invoices/%00/", "/staff/estimates/%00/pdf/"])
def test_a_nul_in_a_staff_document_address_is_404(staff_client, invoice, address):
    assert staff_client.get(address).status_code == 404


def test_the_admin_refuses_a_number_outside_the_rule(client, customer, project, thread):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-xyz")
    client.force_login(user)
    response = client.post(
        "/admin/crm_events/invoice/add/",
        {
            "customer": customer.pk,
            "project": project.pk,
            "number": "A/B",
            "currency": "USD",
            "due_on": "",
            "external_id": "",
            "lines-TOTAL_FORMS": "0",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000",
            "_save": "Save",
        },
    )
    assert response.status_code == 200
    assert "A number is 1 to 40 letters, digits" in response.content.decode()
    assert not Invoice.objects.exists()


def test_documents_stored_before_the_rule_are_renumbered_so_they_open(customer, project):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("crm_events.migrations.0002_document_number")
    pk = {}
    for number in ("1 2", "1\n2", "A/B", ".5", "7", "A-B"):
        # As the API stored them before the rule (the model's validators run only in forms).
        pk[number] = Invoice.objects.create(customer=customer, project=project, number=number).pk
    migration.renumber(apps, None)
    numbers = {i.pk: i.number for i in Invoice.objects.all()}
    newline = pk["1\n2"]
    assert numbers == {
        pk["1 2"]: "1-2",
        newline: f"1-2-{newline}",
        pk["A/B"]: f"A-B-{pk['A/B']}",  # "A-B" is another invoice's
        pk[".5"]: "N.5",
        pk["7"]: "7",
        pk["A-B"]: "A-B",
    }
    for number in numbers.values():
        resolve(f"/invoices/{number}/")  # every one has an address again
