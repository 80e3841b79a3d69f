"""Estimate approval (issue 21): Sarah signs with her typed name and a tick, on the version her
page showed, with the options she chose; each bad input is a clear answer that writes
nothing; an approved version is frozen and a revision is a new version she decides again."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from django.test import Client

from crm_events import actions
from crm_events.models import Estimate, EstimateDecision, EstimateVersion, OutboundEvent
from crm_events.pdf import document_pdf
from messaging.models import Entry
from tests.crm_events.test_pdf import pdf_text

TERMS = "50% deposit on approval, the balance on completion."
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"


def _lines(*extra: actions.LineData) -> list[actions.LineData]:
    return [
        actions.LineData("Cedar privacy screen", Decimal(1), Decimal("6200.00")),
        actions.LineData("Pergola", Decimal(1), Decimal("3600.00")),
        *extra,
    ]


STAIN = actions.LineData("Second coat of stain", Decimal(1), Decimal("450.00"), optional=True)


def _send(customer, project, *lines: actions.LineData, terms: str = TERMS):
    return actions.send_estimate(
        customer=customer,
        project=project,
        number="311",
        lines=list(lines) or _lines(STAIN),
        currency="USD",
        total=Decimal("9800.00"),
        terms=terms,
    )


@pytest.fixture
def estimate(customer, project, thread):
    return _send(customer, project).record


@pytest.fixture
def sarah(customer_client):
    customer_client.defaults.update(REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=AGENT)
    return customer_client


def _approve(client, **fields):
    data = {"version": 1, "name": "Sarah Mitchell", "agree": "on", **fields}
    return client.post("/estimates/311/approve/", {k: v for k, v in data.items() if v is not None})


def _nothing_written(estimate, thread, entries_before: int) -> None:
    estimate.refresh_from_db()
    assert estimate.status == Estimate.Status.SENT and estimate.decided_at is None
    assert not EstimateDecision.objects.exists()
    assert thread.entries.count() == entries_before
    assert not OutboundEvent.objects.exists()


def test_the_page_shows_terms_optional_lines_and_the_signing_form(sarah, estimate):
    page = sarah.get("/estimates/311/").content.decode()
    assert "Terms" in page and TERMS in page
    assert "Second coat of stain" in page and "Optional" in page
    assert 'name="options"' in page and 'value="2"' in page and 'data-amounts="2:450.00"' in page
    assert 'name="name"' in page and 'autocomplete="name"' in page and 'name="agree"' in page
    assert "Total without options" in page and "$9,800" in page
    assert 'src="/static/crm_events/estimate.js"' in page and "<script>" not in page


def test_sarah_approves_with_an_option_and_everything_is_recorded(sarah, estimate, thread):
    response = _approve(sarah, options="2")
    assert response.status_code == 302 and response.url == "/estimates/311/?decided=1"
    estimate.refresh_from_db()
    assert estimate.status == Estimate.Status.APPROVED
    decision = EstimateDecision.objects.get()
    assert decision.signer_name == "Sarah Mitchell" and decision.version == 1
    assert decision.ip_address == "203.0.113.7" and decision.user_agent == AGENT
    assert decision.chosen_options == [2] and decision.total == Decimal("10250.00")
    # The hash is of the canonical JSON kept beside it, which holds what she was shown.
    assert decision.document_sha256 == hashlib.sha256(decision.document.encode()).hexdigest()
    document = json.loads(decision.document)
    assert document["number"] == "311" and document["version"] == 1
    assert document["terms"] == TERMS and document["chosen_options"] == [2]
    assert document["totals"] == {"base": "9800.00", "options": "450.00", "total": "10250.00"}
    assert [line["optional"] for line in document["lines"]] == [False, False, True]
    # A card in the thread that is hers, unread for staff; no message in her name.
    card = thread.entries.order_by("seq").last()
    assert card.kind == Entry.Kind.CUSTOMER_CARD
    assert card.body == "Estimate #311 approved by Sarah Mitchell — $10,250"
    assert not thread.entries.filter(kind=Entry.Kind.CUSTOMER_REPLY).exists()
    thread.refresh_from_db()
    assert thread.staff_unread == 1 and thread.customer_unread == 1  # the "sent" card only
    page = sarah.get(response.url).content.decode()
    assert "You approved this estimate" in page and decision.document_sha256 in page


def test_staff_reading_the_thread_reads_the_decision_card(sarah, estimate, thread):
    from messaging import actions as thread_actions

    _approve(sarah)
    thread.refresh_from_db()
    assert thread_actions.mark_read(thread=thread, side="staff") == 1
    thread.refresh_from_db()
    assert thread.staff_unread == 0


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": None}, "Type your full name to sign."),
        ({"name": "   "}, "Type your full name to sign."),
        ({"agree": None}, "Tick “I agree” to approve."),
        ({"options": "0"}, "Select a valid choice."),  # a line that is not optional
        ({"version": None}, "Reload the page"),
        ({"version": "x"}, "Reload the page"),
    ],
)
def test_an_approval_missing_a_part_is_refused_and_writes_nothing(
    sarah, estimate, thread, fields, message
):
    before = thread.entries.count()
    response = _approve(sarah, **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    _nothing_written(estimate, thread, before)


def test_a_stale_version_is_refused_and_the_new_one_shown(sarah, estimate, customer, project):
    # Her page showed version 1; meanwhile the CRM sent other content: version 2.
    _send(customer, project, *_lines(STAIN), terms="Payment in full on completion.")
    estimate.refresh_from_db()
    assert estimate.version == 2 and estimate.status == Estimate.Status.SENT
    response = _approve(sarah, version=1)
    assert response.status_code == 409
    page = response.content.decode()
    assert "has changed since you opened it: this is version 2" in page
    assert "Payment in full on completion." in page and 'name="version" value="2"' in page
    assert not EstimateDecision.objects.exists()
    assert _approve(sarah, version=2).status_code == 302


def test_deciding_twice_is_refused(sarah, estimate, thread):
    _approve(sarah)
    entries = thread.entries.count()
    response = sarah.post("/estimates/311/decline/", {"version": 1, "reason": "Changed my mind"})
    assert response.status_code == 409
    assert "Estimate #311 is approved already." in response.content.decode()
    assert EstimateDecision.objects.count() == 1 and thread.entries.count() == entries


def test_daniel_cannot_decide_sarahs_estimate(client, other_customer, estimate, thread):
    client.force_login(other_customer.user)
    before = thread.entries.count()
    assert _approve(client, name="Daniel Ortiz").status_code == 404
    assert client.post("/estimates/311/decline/", {"version": 1}).status_code == 404
    _nothing_written(estimate, thread, before)


def test_sarah_declines_with_a_reason_staff_see_and_the_crm_hears(
    sarah, estimate, thread, crm_endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = sarah.post(
            "/estimates/311/decline/", {"version": 1, "reason": "Over our budget this year."}
        )
    assert response.status_code == 302
    card, note = thread.entries.order_by("-seq")[:2][::-1]
    assert (
        card.body == "Estimate #311 declined by Sarah Mitchell"
        and card.kind == Entry.Kind.CUSTOMER_CARD
    )
    assert note.kind == Entry.Kind.INTERNAL_NOTE and "Over our budget this year." in note.body
    (event,) = [json.loads(e.body) for e in OutboundEvent.objects.filter(type="estimate.declined")]
    assert event["data"]["reason"] == "Over our budget this year."
    assert event["data"]["signer"]["name"] == "Sarah Mitchell"
    # Her own thread never shows the staff note.
    assert "Over our budget" not in sarah.get("/messages/").content.decode()


def test_an_approved_version_is_frozen_and_a_revision_is_decided_again(
    sarah, estimate, customer, project, thread
):
    _approve(sarah, options="2")
    cards = thread.entries.count()
    # The same content again changes nothing.
    again = _send(customer, project)
    assert not again.changed and again.record.version == 1
    assert again.record.status == Estimate.Status.APPROVED and thread.entries.count() == cards
    # Other content is version 2: sent again, carded, version 1 kept with its decision.
    revised = _send(customer, project, *_lines(), terms=TERMS)
    estimate.refresh_from_db()
    assert estimate.version == 2 and estimate.status == Estimate.Status.SENT
    assert estimate.decided_at is None
    assert thread.entries.order_by("seq").last().body == "Estimate #311 revised — $9,800"
    assert revised.card.body == "Estimate #311 revised — $9,800"
    first = EstimateVersion.objects.get(estimate=estimate, version=1).content
    assert [line["description"] for line in first["lines"]][-1] == "Second coat of stain"
    assert EstimateDecision.objects.get(version=1).total == Decimal("10250.00")
    # The page shows version 2, not decided; she approves it too.
    assert "Your decision" in sarah.get("/estimates/311/").content.decode()
    assert _approve(sarah, version=2).status_code == 302
    assert list(EstimateDecision.objects.values_list("version", "total")) == [
        (1, Decimal("10250.00")),
        (2, Decimal("9800.00")),
    ]


def test_a_draft_sent_with_other_content_is_still_refused(customer, project, thread):
    Estimate.objects.create(customer=customer, number="311", total=Decimal(0))
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="already exists with different content"):
        _send(customer, project)


def test_the_pdf_carries_terms_and_the_signature_block(sarah, estimate):
    assert "Approved and signed" not in pdf_text(document_pdf(estimate, locale="en_US"))
    _approve(sarah)
    estimate.refresh_from_db()
    text = pdf_text(document_pdf(estimate, locale="en_US"))
    decision = EstimateDecision.objects.get()
    assert "Terms" in text and "50% deposit on approval" in text
    assert "Approved and signed" in text and "Signed by Sarah Mitchell" in text
    assert "203.0.113.7" in text and decision.document_sha256 in text.replace(" ", "")


def test_staff_see_the_signature_on_the_staff_document(sarah, estimate, staff):
    _approve(sarah)
    staff_client = Client()
    staff_client.force_login(staff)
    page = staff_client.get("/staff/estimates/311/").content.decode()
    assert "Approved and signed" in page and "Sarah Mitchell" in page and "203.0.113.7" in page
