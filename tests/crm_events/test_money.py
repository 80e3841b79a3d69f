"""Money: Decimal all the way, totals from lines, shown in the business's format."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm_events import actions
from crm_events.formatting import format_money
from crm_events.models import CrmSettings, Invoice
from crm_events.pdf import document_pdf
from tests.crm_events.conftest import lines


@pytest.mark.parametrize(
    "amount, currency, locale, text",
    [
        ("4200.00", "USD", "en_US", "$4,200"),
        ("4200.50", "USD", "en_US", "$4,200.50"),
        ("0.05", "USD", "en_US", "$0.05"),
        ("4200.00", "EUR", "de_DE", "4.200\xa0€"),
        ("4200.50", "EUR", "de_DE", "4.200,50\xa0€"),
        ("1250", "CAD", "en_CA", "$1,250"),
    ],
)
def test_amounts_read_in_the_business_format(amount, currency, locale, text):
    assert format_money(Decimal(amount), currency, locale) == text


def test_totals_come_from_fractional_lines_rounded_half_up(customer, project, thread):
    invoice = actions.send_invoice(
        customer=customer,
        project=project,
        number="9",
        currency="USD",
        lines=[
            actions.LineData("Stain", Decimal("2.5"), Decimal("500.20")),
            actions.LineData("Brushes", Decimal("0.333"), Decimal("10.00")),
        ],
    ).record
    assert invoice.total == Decimal("1253.83")  # 1250.50 + 3.33
    assert thread.entries.get().body == "Invoice #9 sent — $1,253.83"


def test_the_card_uses_the_business_locale(customer, project, thread, business):
    CrmSettings.objects.create(business=business, currency="EUR", locale="de_DE")
    actions.send_invoice(
        customer=customer, project=project, number="7", currency="EUR", lines=lines("4200")
    )
    assert thread.entries.get().body == "Invoice #7 sent — 4.200\xa0€"


@pytest.mark.parametrize("total", ["4199.99", "4200.01"])
def test_a_total_that_does_not_match_its_lines_is_refused(customer, project, thread, total):
    with pytest.raises(ValidationError) as error:
        actions.send_invoice(
            customer=customer,
            project=project,
            number="1",
            currency="USD",
            lines=lines("4000", "200"),
            total=Decimal(total),
        )
    assert "add up to 4200.00" in error.value.messages[0]
    assert not Invoice.objects.exists() and not thread.entries.exists()


def test_a_pdf_survives_text_its_fonts_cannot_draw(customer, project, thread):
    invoice = actions.send_invoice(
        customer=customer,
        project=project,
        number="8",
        currency="USD",
        lines=[actions.LineData("Deck 🌲 “cedar” — 2nd coat", Decimal(1), Decimal("99.50"))],
    ).record
    assert document_pdf(invoice, locale="en_US").startswith(b"%PDF")
