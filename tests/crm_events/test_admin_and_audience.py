"""Staff work from the admin (which calls the same actions: one card per change) and from
the chat modal (Log a call, Crew on the way). Transcripts stay with staff everywhere."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crm_events import actions
from crm_events.models import Appointment, Call, Invoice
from messaging.models import Entry
from notifications.outbound import content
from tests.crm_events.conftest import local

SECRET_TEXT = "TRANSCRIPT-SECRET cedar stain second coat"


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-xyz")
    client.force_login(user)
    return client


def _invoice_form(customer, project, status, **extra):
    """The change form, saved with the button that moves the invoice to `status` (status is
    read-only: only the buttons and list actions move it, through transition_invoice)."""
    data = {
        "customer": customer.pk,
        "project": project.pk,
        "number": "2041",
        "currency": "USD",
        "due_on": "2031-05-29",
        "external_id": "",
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-position": "0",
        "lines-0-description": "Composite decking",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "3100.00",
        "lines-1-position": "1",
        "lines-1-description": "Railing",
        "lines-1-quantity": "2",
        "lines-1-unit_price": "550.00",
        "_save": "Save",
    }
    if status != "draft":
        data["_status"] = status
    data.update(extra)
    return data


def test_saving_an_invoice_as_sent_in_the_admin_posts_its_card_once(
    admin_client, customer, project, thread
):
    response = admin_client.post(
        "/admin/crm_events/invoice/add/", _invoice_form(customer, project, "draft")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    invoice = Invoice.objects.get()
    assert str(invoice.total) == "4200.00"
    assert not thread.entries.exists()  # a draft is not the customer's business yet
    url = f"/admin/crm_events/invoice/{invoice.pk}/change/"
    change = {
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "2",
        "lines-0-id": str(invoice.lines.all()[0].pk),
        "lines-0-invoice": str(invoice.pk),
        "lines-1-id": str(invoice.lines.all()[1].pk),
        "lines-1-invoice": str(invoice.pk),
    }
    for _ in range(2):
        response = admin_client.post(url, _invoice_form(customer, project, "sent", **change))
        assert response.status_code == 302
    assert list(thread.entries.values_list("body", flat=True)) == ["Invoice #2041 sent — $4,200"]
    admin_client.post(url, _invoice_form(customer, project, "paid", **change))
    assert list(thread.entries.values_list("body", flat=True)) == [
        "Invoice #2041 sent — $4,200",
        "Invoice #2041 paid",
    ]


def test_the_admin_refuses_a_project_of_another_customer(
    admin_client, customer, other_customer, other_project, thread
):
    response = admin_client.post(
        "/admin/crm_events/invoice/add/", _invoice_form(customer, other_project, "sent")
    )
    assert response.status_code == 200
    assert "belongs to another customer" in response.content.decode()
    assert not Invoice.objects.exists()


def test_moving_an_appointment_in_the_admin_reschedules_it(admin_client, appointment, thread):
    url = f"/admin/crm_events/appointment/{appointment.pk}/change/"
    data = {
        "customer": appointment.customer_id,
        "project": appointment.project_id,
        "title": "Deck install",
        "starts_at_0": "2031-05-16",
        "starts_at_1": "13:00:00",
        "ends_at_0": "2031-05-16",
        "ends_at_1": "14:00:00",
        "status": "confirmed",
        "crew_note": "",
        "external_id": "APT-77",
        "_save": "Save",
    }
    assert admin_client.post(url, data).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.RESCHEDULED
    assert thread.entries.filter(body__startswith="Appointment rescheduled to").count() == 1


def test_the_admin_add_page_prefills_the_customer_from_the_modal_link(
    admin_client, customer, project
):
    html = admin_client.get(
        f"/admin/crm_events/invoice/add/?customer={customer.pk}&project={project.pk}"
    ).content.decode()
    assert f'<option value="{customer.pk}" selected>' in html


def test_mike_logs_a_call_from_the_modal(staff_client, thread, project):
    data = {
        "key": "call1",
        "started_at": "2026-05-13T16:12",
        "duration_minutes": "6",
        "direction": "inbound",
        "transcript": SECRET_TEXT,
        "project": project.pk,
    }
    url = f"/staff/crm/{thread.pk}/call/"
    response = staff_client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Phone call — " in html and "6 min" in html and SECRET_TEXT in html
    assert 'id="staff-tools" hx-swap-oob="true"' in html  # fresh forms with new keys
    staff_client.post(url, data, HTTP_HX_REQUEST="true")  # a double click
    call = Call.objects.get()
    assert call.duration_seconds == 360 and call.entry.kind == Entry.Kind.CALL


def test_a_call_from_the_future_is_refused_with_the_reason(staff_client, thread):
    response = staff_client.post(
        f"/staff/crm/{thread.pk}/call/",
        {
            "key": "c",
            "started_at": "2099-01-01T10:00",
            "duration_minutes": "5",
            "direction": "outbound",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "already happened" in response.content.decode()
    assert not Call.objects.exists()


def test_mike_sends_crew_on_the_way_from_the_modal(staff_client, thread):
    url = f"/staff/crm/{thread.pk}/crew/"
    response = staff_client.post(url, {"key": "crew1", "eta_minutes": "25"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    entry = thread.entries.get()
    assert entry.urgent and "arriving in about 25 minutes" in entry.body
    assert "Automated" in response.content.decode()


def test_customers_cannot_use_the_staff_tools(customer_client, thread):
    response = customer_client.post(
        f"/staff/crm/{thread.pk}/crew/", {"key": "k", "eta_minutes": "5"}
    )
    assert response.status_code == 404
    assert not thread.entries.exists()


def test_the_staff_chat_shows_the_tools(staff_client, thread, customer):
    html = staff_client.get(f"/staff/chat/{thread.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Log a call" in html and "Crew on the way" in html
    assert f"/admin/crm_events/invoice/add/?customer={customer.pk}" in html
    assert f'aria-label="Create an appointment for {customer.name}"' in html


def test_transcripts_never_reach_a_customer_surface(
    customer_client, customer, thread, staff, invoice, appointment
):
    call = actions.log_call(
        customer=customer,
        started_at=local(2031, 5, 13, 16, 12),
        duration_seconds=360,
        transcript=SECRET_TEXT,
        author=staff,
        idempotency_key="call:1",
    )
    for url in (
        "/messages/",
        "/project/",
        "/schedule/",
        "/invoices/",
        "/invoices/2041/",
        "/messages/search/?q=cedar",
    ):
        assert "TRANSCRIPT-SECRET" not in customer_client.get(url).content.decode(), url
    entry = Entry.objects.get(pk=call.entry_id)
    assert "TRANSCRIPT-SECRET" not in content.sms_for_customer(entry)
    assert "TRANSCRIPT-SECRET" not in str(content.push_payload(entry, customer.business))
