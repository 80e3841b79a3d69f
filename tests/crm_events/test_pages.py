"""Documents a tap away and the portal's real tabs: Sarah (customer), mike (staff), Daniel
(other customer). Lists assert their query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_events import actions
from crm_events.models import Estimate
from messaging import actions as thread_actions
from messaging.models import Entry
from tests.crm_events.conftest import lines, local
from tests.factories import ProjectFactory


@pytest.fixture
def daniel_client(client, other_customer):
    client.force_login(other_customer.user)
    return client


def test_sarah_opens_her_invoice_from_its_card(customer_client, invoice, thread):
    card = thread.entries.get(kind=Entry.Kind.EVENT_CARD)
    page = customer_client.get(card.link_url)
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Invoice #2041", "$3,100", "$850", "$250", "$4,200", "Sent", "Deck Replacement"):
        assert text in html
    assert 'href="/invoices/2041/pdf/"' in html


def test_the_invoice_pdf_is_a_pdf_with_its_lines(customer_client, invoice):
    response = customer_client.get("/invoices/2041/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert 'filename="invoice-2041.pdf"' in response["Content-Disposition"]


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/invoices/2041/"),
        ("get", "/invoices/2041/pdf/"),
        ("get", "/estimates/311/"),
        ("get", "/estimates/311/pdf/"),
        ("post", "/estimates/311/approve/"),
        ("post", "/estimates/311/decline/"),
        ("post", "/schedule/{appointment}/confirm/"),
        ("post", "/schedule/{appointment}/reschedule/"),
    ],
)
def test_daniel_gets_404_for_everything_of_sarahs(
    daniel_client, invoice, estimate, appointment, method, url
):
    url = url.format(appointment=appointment.pk)
    response = getattr(daniel_client, method)(url, {"key": "abc"} if method == "post" else None)
    assert response.status_code == 404
    estimate.refresh_from_db()
    appointment.refresh_from_db()
    assert estimate.status == "sent" and appointment.status == "scheduled"


def test_unknown_numbers_and_drafts_are_404(customer_client, customer, thread):
    assert customer_client.get("/invoices/9999/").status_code == 404
    from crm_events.models import Invoice

    Invoice.objects.create(customer=customer, number="D1", total=Decimal(0))
    assert customer_client.get("/invoices/D1/").status_code == 404


def test_staff_following_a_card_get_the_staff_framed_document_not_a_404(
    staff_client, invoice, estimate, appointment, thread
):
    response = staff_client.get("/invoices/2041/")
    assert response.status_code == 302 and response.url == "/staff/invoices/2041/"
    page = staff_client.get(response.url).content.decode()
    assert "Invoice #2041" in page and "$4,200" in page
    assert f"/staff/chat/{thread.pk}/" in page
    assert staff_client.get("/estimates/311/").url == "/staff/estimates/311/"
    assert staff_client.get("/staff/estimates/311/pdf/").content.startswith(b"%PDF")
    card = thread.entries.filter(card_kind="appointment").first()
    response = staff_client.get(card.link_url)
    assert response.url == f"/staff/appointments/{appointment.pk}/"
    assert staff_client.get(response.url).status_code == 302  # to the admin's change page


def test_customers_get_404_on_staff_documents(customer_client, invoice):
    assert customer_client.get("/staff/invoices/2041/").status_code == 404


def test_sarah_approves_an_estimate_and_the_business_hears_of_it(customer_client, estimate, thread):
    page = customer_client.get("/estimates/311/").content.decode()
    assert "Approve estimate — " in page and "$9,800" in page and "Decline" in page
    response = customer_client.post(
        "/estimates/311/approve/", {"version": 1, "name": "Sarah Mitchell", "agree": "on"}
    )
    assert response.status_code == 302
    estimate.refresh_from_db()
    assert estimate.status == Estimate.Status.APPROVED
    # A card, not a message in her name.
    bodies = list(thread.entries.order_by("seq").values_list("kind", "body"))
    assert bodies[-1] == ("customer_card", "Estimate #311 approved by Sarah Mitchell — $9,800")
    assert not thread.entries.filter(kind="customer_reply").exists()
    thread.refresh_from_db()
    assert thread.staff_unread == 1  # on the staff list, and routed to the business
    from notifications.models import Delivery

    assert Delivery.objects.filter(audience="business").count() == 1
    # Deciding again, either way, is refused and writes nothing.
    for decision in ("approve", "decline"):
        response = customer_client.post(
            f"/estimates/311/{decision}/", {"version": 1, "name": "Sarah Mitchell", "agree": "on"}
        )
        assert response.status_code == 409
        assert "already" in response.content.decode()
    assert thread.entries.filter(body__contains="approved").count() == 1


def test_an_unknown_decision_is_404(customer_client, estimate):
    assert customer_client.post("/estimates/311/maybe/").status_code == 404


def test_ask_to_reschedule_writes_a_message_to_the_business(customer_client, appointment, thread):
    response = customer_client.post(
        f"/schedule/{appointment.pk}/reschedule/", {"key": "r1", "note": "Friday is better."}
    )
    assert response.status_code == 302 and response.url.startswith("/messages/?at=")
    customer_client.post(
        f"/schedule/{appointment.pk}/reschedule/", {"key": "r1", "note": "Friday is better."}
    )
    reply = thread.entries.get(kind=Entry.Kind.CUSTOMER_REPLY)
    assert reply.body == "Could we reschedule Deck install (Thu May 15, 8–9am)? Friday is better."
    assert reply.project_id == appointment.project_id


def test_schedule_shows_upcoming_with_buttons_and_past(
    customer_client, customer, project, appointment
):
    actions.schedule_appointment(
        customer=customer,
        project=project,
        title="Site survey",
        starts_at=local(2020, 3, 1, 10),
        ends_at=local(2020, 3, 1, 11),
    )
    html = customer_client.get("/schedule/").content.decode()
    upcoming, past = html.split('id="past-title"')
    assert "Deck install" in upcoming and "Thu May 15, 8–9am" in upcoming
    assert 'aria-label="Confirm Deck install, Thu May 15, 8–9am"' in upcoming
    assert "Ask to reschedule" in upcoming
    assert "Site survey" in past and "Confirm" not in past


def _records(customer, project, n):
    for i in range(n):
        actions.send_invoice(
            customer=customer,
            project=project,
            number=f"I{i}-{project.pk}",
            lines=lines("10.00", "2.50"),
            currency="USD",
        )
        actions.send_estimate(
            customer=customer,
            project=project,
            number=f"E{i}-{project.pk}",
            lines=lines("99.00"),
            currency="USD",
        )
        actions.schedule_appointment(
            customer=customer,
            project=project,
            title=f"Visit {i}",
            starts_at=local(2031, 5, 1 + i, 8),
            ends_at=local(2031, 5, 1 + i, 9),
        )
        actions.send_contract(
            customer=customer, project=project, number=f"C{i}-{project.pk}", title=f"Agreement {i}"
        )
        thread_actions.post_customer_reply(
            customer=customer, body=f"About visit {i}", project=project
        )


@pytest.mark.parametrize("n", [1, 6])
def test_invoices_tab_query_count_is_constant(
    customer_client, customer, project, thread, n, django_assert_num_queries
):
    _records(customer, project, n)
    # user (the session is in the cache), customer+business+user, invoices with projects,
    # estimates with projects, the business's CRM settings (currency format)
    with django_assert_num_queries(5):
        response = customer_client.get("/invoices/")
    html = response.content.decode()
    assert html.count("doc-row") == 2 * n
    assert "$12.50" in html and "Awaiting your approval" in html


@pytest.mark.parametrize("n", [1, 6])
def test_schedule_tab_query_count_is_constant(
    customer_client, customer, project, thread, n, django_assert_num_queries
):
    _records(customer, project, n)
    # user (the session is in the cache), customer+business+user, appointments with projects,
    # the calendar feed's version (its link)
    with django_assert_num_queries(4):
        response = customer_client.get("/schedule/")
    assert response.content.decode().count('class="panel appointment') == n


@pytest.mark.parametrize("n", [1, 6])
def test_project_tab_query_count_is_constant_for_two_projects(
    customer_client, customer, project, thread, n, django_assert_num_queries
):
    patio = ProjectFactory(customer=customer, code="PRJ-2000", title="Patio")
    _records(customer, project, n)
    _records(customer, patio, n)
    # user (the session is in the cache), customer+business+user, projects, next appointments,
    # open invoices, open estimates, contracts, latest entries per project (one window query),
    # CRM settings
    with django_assert_num_queries(9):
        response = customer_client.get("/project/")
    html = response.content.decode()
    assert "Deck Replacement Project" in html and "Patio" in html
    assert "Next appointment" in html and "awaiting your approval" in html


def test_the_project_chip_filter_shows_one_project(customer_client, customer, project, thread):
    patio = ProjectFactory(customer=customer, code="PRJ-2000", title="Patio")
    thread_actions.post_customer_reply(customer=customer, body="Deck question", project=project)
    thread_actions.post_customer_reply(customer=customer, body="Patio question", project=patio)
    html = customer_client.get("/project/?p=PRJ-2000").content.decode()
    assert "Patio question" in html and "Deck question" not in html
    assert 'aria-current="true">Patio' in html
    # Filtering by a project of someone else's shows nothing of it.
    assert "Kitchen" not in customer_client.get("/project/?p=PRJ-1043").content.decode()


def test_my_project_shows_status_next_appointment_open_documents(
    customer_client, invoice, estimate, appointment
):
    html = customer_client.get("/project/").content.decode()
    for text in ("Active", "Thu May 15, 8–9am", "Invoice #2041", "Estimate #311", "$9,800"):
        assert text in html
