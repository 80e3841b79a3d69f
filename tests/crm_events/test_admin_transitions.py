"""The admin shows a CRM record's status read-only and changes it only through buttons and list
actions that call the record's transition function: the same table of moves as the API, and
one card per change (issue 17)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crm_events import actions
from crm_events.models import Appointment, Contract, Estimate, Invoice
from tests.crm_events.conftest import lines


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-xyz")
    client.force_login(user)
    return client


@pytest.fixture
def draft(customer, project, thread):
    invoice = Invoice.objects.create(customer=customer, project=project, number="2050")
    invoice.lines.create(description="Gate latch", unit_price="80.00")
    actions.recompute_total(document=invoice)
    return invoice


def _invoice_post(invoice, **extra):
    line = invoice.lines.get()
    data = {
        "customer": invoice.customer_id,
        "project": invoice.project_id,
        "number": invoice.number,
        "currency": "USD",
        "due_on": "",
        "external_id": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-id": str(line.pk),
        "lines-0-invoice": str(invoice.pk),
        "lines-0-position": "0",
        "lines-0-description": line.description,
        "lines-0-quantity": "1",
        "lines-0-unit_price": "80.00",
        "_save": "Save",
    }
    data.update(extra)
    return data


def _change_url(record) -> str:
    return f"/admin/crm_events/{record._meta.model_name}/{record.pk}/change/"


def _cards(thread) -> list[str]:
    return list(thread.entries.order_by("seq").values_list("body", flat=True))


def test_the_admin_shows_status_read_only_and_ignores_a_posted_status(admin_client, draft, thread):
    html = admin_client.get(_change_url(draft)).content.decode()
    assert 'name="status"' not in html
    response = admin_client.post(_change_url(draft), _invoice_post(draft, status="paid"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT
    assert _cards(thread) == []


def test_the_change_form_offers_only_the_moves_the_table_allows(admin_client, draft):
    html = admin_client.get(_change_url(draft)).content.decode()
    assert 'name="_status" value="sent"' in html
    assert 'value="paid"' not in html and 'value="void"' not in html
    actions.transition_invoice(invoice=draft, to=Invoice.Status.SENT)
    html = admin_client.get(_change_url(draft)).content.decode()
    assert 'name="_status" value="paid"' in html and 'name="_status" value="void"' in html
    assert 'value="sent"' not in html


def test_the_admin_refuses_paying_a_draft_invoice_with_the_reason(admin_client, draft, thread):
    response = admin_client.post(
        _change_url(draft), _invoice_post(draft, _status="paid"), follow=True
    )
    assert "Invoice #2050 is draft; it cannot become paid." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and draft.paid_at is None
    assert _cards(thread) == []


def test_the_send_button_saves_the_lines_then_sends_the_invoice_once(admin_client, draft, thread):
    post = _invoice_post(draft, _status="sent", **{"lines-0-unit_price": "95.00"})
    for _ in range(2):
        assert admin_client.post(_change_url(draft), post).status_code == 302
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.SENT and draft.issued_at is not None
    assert _cards(thread) == ["Invoice #2050 sent — $95"]


def test_marking_selected_invoices_paid_from_the_list_posts_one_card_each(
    admin_client, customer, project, thread, draft
):
    sent = [
        actions.send_invoice(
            customer=customer, project=project, number=n, lines=lines("10.00"), currency="USD"
        ).record
        for n in ("3001", "3002")
    ]
    selected = [str(i.pk) for i in [*sent, draft]]
    response = admin_client.post(
        "/admin/crm_events/invoice/",
        {"action": "make_paid", "_selected_action": selected},
        follow=True,
    )
    assert "Invoice #2050 is draft; it cannot become paid." in response.content.decode()
    statuses = dict(Invoice.objects.values_list("number", "status"))
    assert statuses == {"3001": "paid", "3002": "paid", "2050": "draft"}
    paid = [body for body in _cards(thread) if body.endswith("paid")]
    assert sorted(paid) == ["Invoice #3001 paid", "Invoice #3002 paid"]


def test_an_estimate_is_sent_and_approved_with_the_buttons(admin_client, customer, project, thread):
    estimate = Estimate.objects.create(customer=customer, project=project, number="311")
    estimate.lines.create(description="Pergola", unit_price="3600.00")
    actions.recompute_total(document=estimate)
    line = estimate.lines.get()
    post = {
        "customer": customer.pk,
        "project": project.pk,
        "number": "311",
        "currency": "USD",
        "valid_until": "",
        "external_id": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-id": str(line.pk),
        "lines-0-estimate": str(estimate.pk),
        "lines-0-position": "0",
        "lines-0-description": "Pergola",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "3600.00",
    }
    for status in ("sent", "approved", "approved"):
        assert admin_client.post(_change_url(estimate), {**post, "_status": status}).status_code
    estimate.refresh_from_db()
    assert estimate.status == Estimate.Status.APPROVED and estimate.decided_at is not None
    assert _cards(thread) == ["Estimate #311 sent — $3,600", "Estimate #311 approved"]


def test_sending_a_contract_from_the_admin_posts_its_card_once(
    admin_client, customer, project, thread
):
    post = {
        "customer": customer.pk,
        "project": project.pk,
        "number": "C-12",
        "title": "Deck build agreement",
        "external_id": "",
        "_status": "sent",
    }
    assert admin_client.post("/admin/crm_events/contract/add/", post).status_code == 302
    contract = Contract.objects.get()
    admin_client.post(_change_url(contract), post)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.SENT and contract.sent_at is not None
    assert _cards(thread) == ["Contract sent — Deck build agreement"]


def _appointment_post(appointment, **extra):
    data = {
        "customer": appointment.customer_id,
        "project": appointment.project_id,
        "title": "Deck install",
        "starts_at_0": "2031-05-15",
        "starts_at_1": "12:00:00",
        "ends_at_0": "2031-05-15",
        "ends_at_1": "13:00:00",
        "crew_note": "",
        "external_id": "APT-77",
        "_save": "Save",
    }
    data.update(extra)
    return data


def test_adding_an_appointment_in_the_admin_books_it_with_one_card(
    admin_client, customer, project, thread
):
    data = {
        "customer": customer.pk,
        "project": project.pk,
        "title": "Deck install",
        "starts_at_0": "2031-05-15",
        "starts_at_1": "12:00:00",
        "ends_at_0": "2031-05-15",
        "ends_at_1": "13:00:00",
        "crew_note": "Gate code 4512",
        "external_id": "",
        "_save": "Save",
    }
    response = admin_client.post("/admin/crm_events/appointment/add/", data)
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.status == Appointment.Status.SCHEDULED
    assert appointment.crew_note == "Gate code 4512"
    assert [c for c in _cards(thread) if c.startswith("Appointment")] == [
        "Appointment scheduled — Thu May 15, 8–9am"
    ]


def test_confirming_an_appointment_with_the_admin_button_cards_it_once(
    admin_client, appointment, thread
):
    for _ in range(2):
        response = admin_client.post(
            _change_url(appointment), _appointment_post(appointment, _status="confirmed")
        )
        assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    assert appointment.confirmed_at is not None
    assert thread.entries.filter(body__startswith="Appointment confirmed").count() == 1


def test_moving_a_cancelled_appointment_in_the_admin_is_refused_with_the_reason(
    admin_client, appointment, thread
):
    actions.transition_appointment(appointment=appointment, to=Appointment.Status.CANCELLED)
    before = _cards(thread)
    moved = _appointment_post(appointment, starts_at_0="2031-05-16", ends_at_0="2031-05-16")
    response = admin_client.post(_change_url(appointment), moved)
    assert response.status_code == 200
    assert "The appointment Deck install is cancelled already." in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.starts_at.day == 15
    assert _cards(thread) == before


def test_editing_an_appointments_note_in_the_admin_keeps_its_status_and_posts_nothing(
    admin_client, appointment, thread
):
    actions.confirm_appointment(appointment=appointment)
    before = _cards(thread)
    response = admin_client.post(
        _change_url(appointment), _appointment_post(appointment, crew_note="Bring the stain")
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    assert appointment.crew_note == "Bring the stain"
    assert _cards(thread) == before


def test_staff_who_may_only_view_invoices_cannot_move_them(client, customer, project, thread):
    from django.contrib.auth.models import Permission

    invoice = actions.send_invoice(
        customer=customer, project=project, number="3001", lines=lines("10.00"), currency="USD"
    ).record
    viewer = get_user_model().objects.create_user("kim", "kim@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(viewer)
    page = client.get("/admin/crm_events/invoice/").content.decode()
    assert "make_paid" not in page
    client.post(
        "/admin/crm_events/invoice/", {"action": "make_paid", "_selected_action": [invoice.pk]}
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.SENT
    assert not thread.entries.filter(body__endswith="paid").exists()
