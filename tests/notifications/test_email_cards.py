"""Issue 18, item 22: a card in a notification email links its document as a button (HTML)
or a named link (text), never a bare URL under the title."""

from __future__ import annotations

import re

import pytest

from messaging import actions
from notifications.outbound.content import customer_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice_card(thread, project):
    return actions.post_event_card(
        thread=thread,
        card_kind="invoice",
        title="Invoice #2041 sent — $4,200",
        link_url="/invoices/2041/",
        project=project,
        notify=False,
    )


def email_for(entries, customer):
    return customer_email(
        entries=entries, customer=customer, business=customer.business, delivery_id=1
    )


def test_a_cards_email_links_its_document_as_a_button(invoice_card, customer):
    email = email_for([invoice_card], customer)
    html = email.alternatives[0][0]
    assert ">Invoice #2041 sent — $4,200</p>" in html
    assert re.search(
        r'<a href="http://127.0.0.1:8000/invoices/2041/" style="[^"]+">View invoice</a>', html
    )
    # The URL appears only inside the link, never as text.
    assert html.count("http://127.0.0.1:8000/invoices/2041/") == 1


def test_a_cards_plain_text_email_names_the_link(invoice_card, customer):
    text = email_for([invoice_card], customer).body
    assert "Invoice #2041 sent — $4,200\nView invoice: http://127.0.0.1:8000/invoices/2041/" in text


def test_a_message_beside_a_card_stays_plain_text(invoice_card, customer, thread, staff):
    message = actions.post_staff_message(
        thread=thread, author=staff, body="Here is your invoice.", notify=False
    )
    html = email_for([message, invoice_card], customer).alternatives[0][0]
    assert ">Here is your invoice.</p>" in html
    assert html.count(">View invoice</a>") == 1
