"""Issue 18, item 23: the PDF of an invoice or estimate says what its page says: every line
whole (wrapped, not cut), the business's logo or initials and its address, dates written as
the page writes them."""

from __future__ import annotations

import datetime as dt
import io
import re
import zlib
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from crm_events import actions as crm
from crm_events.models import Estimate
from crm_events.pdf import document_pdf

pytestmark = pytest.mark.django_db

SCOPE = (  # within the 300 characters a line may have, and far past one printed line
    "Remove the old deck boards and joists down to the footings, haul everything away, "
    "replace any rotten ledger board, then install composite decking with hidden fasteners, "
    "a picture-frame border and two steps to the lawn; permit drawings included."
)


def pdf_text(pdf: bytes) -> str:
    """The text a PDF draws, in order: fpdf2 writes each line of text as a literal string in
    a Flate-compressed content stream."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) ?Tj", content):
            shown.append(re.sub(rb"\\(.)", rb"\1", literal).decode("windows-1252"))
    return " ".join(shown)


@pytest.fixture
def estimate(customer, project, thread):
    crm.send_estimate(
        customer=customer,
        project=project,
        number="900",
        currency="USD",
        lines=[
            crm.LineData(SCOPE, Decimal(1), Decimal("12500.00")),
            crm.LineData("Cedar privacy screen, 24 ft", Decimal(2), Decimal("3100.00")),
        ],
        total=Decimal("18700.00"),
        valid_until=dt.date(2026, 6, 14),
        # 11pm in New York on May 4 is May 5 in UTC: the page says May 4, her day.
        at=dt.datetime(2026, 5, 5, 3, 0, tzinfo=dt.UTC),
        notify=False,
    )
    return Estimate.objects.select_related("customer__business", "project").get(number="900")


def test_a_long_line_description_is_printed_whole(estimate):
    text = pdf_text(document_pdf(estimate, locale="en_US"))
    # Wrapped over several lines: every word, in order.
    words = SCOPE.split()
    printed = text.split()
    start = printed.index(words[0])
    assert printed[start : start + len(words)] == words
    assert "$12,500" in text and "$18,700" in text


def test_dates_are_written_as_on_the_page_in_her_time_zone(estimate, customer_client):
    text = pdf_text(document_pdf(estimate, locale="en_US"))
    page = customer_client.get("/estimates/900/").content.decode()
    assert "<dt>Issued</dt><dd>May 4, 2026</dd>" in page
    assert "<dt>Valid until</dt><dd>Jun 14, 2026</dd>" in page
    assert "Issued May 4, 2026" in text
    assert "Valid until Jun 14, 2026" in text


def test_the_business_address_and_initials_head_the_pdf(estimate, business):
    business.address = "118 Harbor Road\nMystic, CT 06355"
    business.save()
    estimate.customer.business.refresh_from_db()
    text = pdf_text(document_pdf(estimate, locale="en_US"))
    assert text.startswith("MC Mike's Contracting 118 Harbor Road Mystic, CT 06355")
    assert "(555) 555-0100 | office@mikescontracting.example" in text


def test_the_business_logo_heads_the_pdf(estimate, business, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    png = io.BytesIO()
    Image.new("RGB", (120, 40), (31, 78, 121)).save(png, format="PNG")
    business.logo.save("mikes.png", ContentFile(png.getvalue()))
    estimate.customer.business.refresh_from_db()
    pdf = document_pdf(estimate, locale="en_US")
    assert b"/Subtype /Image" in pdf
    assert not pdf_text(pdf).startswith("MC ")  # the logo instead of the initials


def test_a_logo_it_cannot_draw_falls_back_to_the_initials(estimate, business, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    business.logo.save("mikes.png", ContentFile(b"not an image"))
    estimate.customer.business.refresh_from_db()
    assert pdf_text(document_pdf(estimate, locale="en_US")).startswith("MC Mike's Contracting")
