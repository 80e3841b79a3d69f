"""Saved replies: a body with an unknown variable or a stray brace is refused when saved (the
admin's form says why); the "/" list fills each in with this customer's values, with a
visible fallback where one is missing; the list is staff's and its thread's only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm_events import actions as crm
from crm_events.models import SavedReply
from crm_events.reply_templates import check_body, fill
from tests.factories import ProjectFactory

DEPOSIT = (
    "Hi {first_name}, the deposit for {project} is {invoice_total}. "
    "Your next visit is {next_visit}."
)


def _url(thread) -> str:
    return f"/staff/crm/{thread.pk}/saved-replies/"


@pytest.fixture
def deposit(db):
    return SavedReply.objects.create(name="Deposit", body=DEPOSIT)


@pytest.fixture
def sarahs_records(customer, project):
    """Sarah's deck (active), an older finished fence, invoice #2041 sent ($4,200), and a visit
    booked on Thu May 16, 2030, 8-9am New York time (12:00 UTC)."""
    ProjectFactory(customer=customer, code="PRJ-0900", title="Fence", status="completed")
    crm.send_invoice(
        customer=customer,
        project=project,
        number="2041",
        currency="USD",
        lines=[crm.LineData("Composite decking", Decimal(1), Decimal("4200.00"))],
        notify=False,
    )
    starts = dt.datetime(2030, 5, 16, 12, 0, tzinfo=dt.UTC)
    crm.schedule_appointment(
        customer=customer,
        project=project,
        title="Railing",
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=1),
        notify=False,
    )
    return starts


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Hi {firstname}!", "Unknown variable {firstname}"),
        ("Hi {first_name.__class__}", "Unknown variable {first_name.__class__}"),
        ("Total: {}", "Unknown variable {}"),
        ("Hi {first_name", "opens or closes nothing"),
        ("Hi first_name}", "opens or closes nothing"),
        ("Hi {{first_name}}", "opens or closes nothing"),
    ],
)
def test_a_saved_reply_with_an_unknown_variable_or_bad_braces_is_refused_when_saved(
    db, body, reason
):
    reply = SavedReply(name="Broken", body=body)
    with pytest.raises(ValidationError, match=reason.replace("{", r"\{").replace(".", r"\.")):
        reply.full_clean()


def test_the_admin_form_says_why_and_saves_nothing(admin_client):
    response = admin_client.post(
        "/admin/crm_events/savedreply/add/", {"name": "Deposit", "body": "Hi {frist_name}"}
    )
    assert response.status_code == 200
    assert "Unknown variable {frist_name}" in response.content.decode()
    assert not SavedReply.objects.exists()
    ok = admin_client.post(
        "/admin/crm_events/savedreply/add/", {"name": "Deposit", "body": DEPOSIT}
    )
    assert ok.status_code == 302
    assert SavedReply.objects.get().body == DEPOSIT


def test_every_known_variable_passes():
    check_body(DEPOSIT)


def test_filling_in_is_substitution_not_format():
    text, missing = fill("{first_name} {project}", {"first_name": "Sarah", "project": None})
    assert (text, missing) == ("Sarah [no project]", ["project"])


def test_the_list_is_filled_in_with_sarahs_values(staff_client, thread, deposit, sarahs_records):
    response = staff_client.get(_url(thread))
    assert response.status_code == 200
    (reply,) = response.json()["replies"]
    assert reply["name"] == "Deposit"
    assert reply["text"] == (
        "Hi Sarah, the deposit for Deck Replacement Project is $4,200. "
        "Your next visit is Thu May 16, 8–9am."
    )
    assert reply["missing"] == []


def test_a_customer_without_a_visit_gets_a_visible_fallback_named_as_missing(
    staff_client, thread, project, deposit
):
    (reply,) = staff_client.get(_url(thread)).json()["replies"]
    assert reply["text"] == (
        "Hi Sarah, the deposit for Deck Replacement Project is [no open invoice]. "
        "Your next visit is [no visit scheduled]."
    )
    assert [m["variable"] for m in reply["missing"]] == ["invoice_total", "next_visit"]


def test_q_keeps_the_replies_whose_name_holds_it_prefix_first(staff_client, thread, deposit):
    SavedReply.objects.create(name="Late deposit", body="x")
    SavedReply.objects.create(name="Thanks", body="Thanks, {first_name}!")
    names = [r["name"] for r in staff_client.get(_url(thread), {"q": "DEP"}).json()["replies"]]
    assert names == ["Deposit", "Late deposit"]
    nothing = staff_client.get(_url(thread), {"q": "%_\x00" * 50}).json()
    assert nothing == {"replies": []}


def test_the_list_costs_the_same_queries_for_any_number_of_replies(
    staff_client, thread, deposit, sarahs_records
):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(_url(thread)).status_code == 200
        return len(queries)

    count()  # the first request also reads what the process then remembers (the staff zone)
    before = count()
    for i in range(5):
        SavedReply.objects.create(name=f"Reply {i}", body="Hi {first_name}, {next_visit}")
    assert count() == before


def test_another_thread_is_404_and_customers_are_404(
    client, staff_client, customer, thread, deposit
):
    assert staff_client.get(f"/staff/crm/{thread.pk + 1000}/saved-replies/").status_code == 404
    staff_client.logout()
    client.force_login(customer.user)
    assert client.get(_url(thread)).status_code == 404
