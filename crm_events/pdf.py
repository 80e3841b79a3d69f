"""Invoices and estimates as PDF, with fpdf2 (pure Python: nothing to install beside it).

The PDF says what the web page says (crm_events/_document.html): the business with its logo
(or initials) and address, the same facts under the same names, dates written as the page
writes them ("Dec 4, 2026", in the customer's time zone), and every line whole, wrapped
rather than cut.

The core fonts cover Windows-1252 (dashes, curly quotes, the euro sign); anything outside
it prints as "?", so a stray emoji in a line description cannot break the download."""

from __future__ import annotations

import datetime as dt
import io
import logging
import zoneinfo

from django.utils import dateformat, timezone
from fpdf import FPDF
from fpdf.fonts import FontFace

from crm_events.formatting import format_money
from crm_events.models import Estimate, EstimateDecision, Invoice

logger = logging.getLogger(__name__)

ENCODING = "windows-1252"
ACCENT = (31, 78, 121)  # --accent on the web page
SOFT = (228, 238, 248)  # --accent-soft
MUTED = (86, 97, 113)  # --muted
LOGO_HEIGHT = 16  # mm


def _text(value: object) -> str:
    return str(value).encode(ENCODING, errors="replace").decode(ENCODING)


def page_date(value: dt.date | dt.datetime, zone: str) -> str:
    """A date as the document page writes it ({{ value|date:"M j, Y" }} in the customer's
    time zone): "Dec 4, 2026"."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value, zoneinfo.ZoneInfo(zone))
    return dateformat.format(value, "M j, Y")


def facts(document: Invoice | Estimate) -> list[tuple[str, str]]:
    """The facts under the title, named and ordered as on the page."""
    is_invoice = isinstance(document, Invoice)
    zone = document.customer.time_zone
    rows = [("Status", document.get_status_display()), ("For", document.customer.name)]
    if document.project is not None:
        rows.append(("Project", f"{document.project.code} {document.project.title}"))
    if document.issued_at:
        rows.append(("Sent" if is_invoice else "Issued", page_date(document.issued_at, zone)))
    if is_invoice:
        if document.due_on:
            rows.append(("Due", page_date(document.due_on, zone)))
        if document.paid_at:
            rows.append(("Paid", page_date(document.paid_at, zone)))
    else:
        if document.valid_until:
            rows.append(("Valid until", page_date(document.valid_until, zone)))
        if document.decided_at:
            rows.append((document.get_status_display(), page_date(document.decided_at, zone)))
    return rows


def _logo(pdf: FPDF, business) -> bool:
    """The business's logo at the top left, if it has one fpdf2 can draw."""
    if not business.logo:
        return False
    try:
        with business.logo.open("rb") as file:
            data = io.BytesIO(file.read())
        pdf.image(data, x=pdf.l_margin, y=pdf.t_margin, h=LOGO_HEIGHT)
    except Exception:  # noqa: BLE001 - a logo fpdf2 cannot read must not cost the document
        logger.warning("Logo of business %s not drawn in a PDF", business.pk, exc_info=True)
        return False
    return True


def _initials(pdf: FPDF, business) -> None:
    # The page's avatar: the initials on the accent colour, in a circle.
    x, y, size = pdf.l_margin, pdf.t_margin, LOGO_HEIGHT
    pdf.set_fill_color(*ACCENT)
    pdf.ellipse(x, y, size, size, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_xy(x, y)
    pdf.cell(size, size, _text(business.initials or business.name[:2]), align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)


def document_pdf(document: Invoice | Estimate, *, locale: str) -> bytes:
    """The document as a one-or-more-page A4 PDF: business, customer, lines, total."""
    kind = "Invoice" if isinstance(document, Invoice) else "Estimate"
    customer = document.customer
    business = customer.business

    def cash(amount) -> str:
        return _text(format_money(amount, document.currency, locale))

    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_title(_text(f"{kind} #{document.number}"))
    pdf.set_author(_text(business.name))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    # The business: logo (or initials) beside its name, address and contact.
    if not _logo(pdf, business):
        _initials(pdf, business)
    left = pdf.l_margin + LOGO_HEIGHT + 5
    pdf.set_xy(left, pdf.t_margin)
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 7, _text(business.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*MUTED)
    for line in [*business.address.splitlines(), " | ".join(
        x for x in (business.phone_display, business.email) if x
    )]:  # fmt: skip
        if line.strip():
            pdf.set_x(left)
            pdf.multi_cell(0, 5, _text(line.strip()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_y(max(pdf.get_y(), pdf.t_margin + LOGO_HEIGHT) + 8)

    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*MUTED)
    pdf.cell(0, 5, kind, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _text(f"{kind} #{document.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font("Helvetica", "", 10)
    for label, value in facts(document):
        pdf.set_text_color(*MUTED)
        pdf.cell(30, 6, _text(label))
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    # The lines: a table whose cells wrap (a long scope is the estimate), whose heading row
    # repeats on each page.
    widths = (95, 20, 35, 35)
    with pdf.table(
        width=sum(widths),
        align="LEFT",
        col_widths=widths,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=SOFT),
        borders_layout="HORIZONTAL_LINES",
        line_height=5.5,
        padding=1.5,
    ) as table:
        heading = table.row()
        for title in ("Description", "Qty", "Unit price", "Amount"):
            heading.cell(title)
        for line in document.lines.all():
            row = table.row()
            optional = " (optional)" if getattr(line, "optional", False) else ""
            row.cell(_text(line.description + optional))
            row.cell(f"{line.quantity.normalize():f}")
            row.cell(cash(line.unit_price))
            row.cell(cash(line.amount))
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(sum(widths[:3]), 9, "Total", align="R")
    pdf.cell(widths[3], 9, cash(document.total), align="R", new_x="LMARGIN", new_y="NEXT")
    if isinstance(document, Invoice) and document.amount_paid:
        for label, amount in (
            ("Paid", document.amount_paid),
            ("Balance due", document.balance_due),
        ):
            pdf.cell(sum(widths[:3]), 7, label, align="R")
            pdf.cell(widths[3], 7, cash(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    if isinstance(document, Estimate):
        _terms_and_signature(pdf, document, cash)
    return bytes(pdf.output())


def _terms_and_signature(pdf: FPDF, estimate: Estimate, cash) -> None:
    """An estimate's terms, and once the customer approved its current version, the
    signature block: who typed their name, when, from which address, and the SHA-256 of the
    document they were shown."""
    if estimate.terms:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, "Terms", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5, _text(estimate.terms), new_x="LMARGIN", new_y="NEXT")
    decision = (
        EstimateDecision.objects.filter(
            estimate=estimate, version=estimate.version, decision=EstimateDecision.Decision.APPROVED
        ).first()
        if estimate.status == Estimate.Status.APPROVED
        else None
    )
    if decision is None:
        return
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Approved and signed", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    signed_at = decision.decided_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    for label, value in (
        ("Signed by", decision.signer_name),
        ("When", signed_at),
        ("Total", cash(decision.total)),
        ("IP address", decision.ip_address or "-"),
        ("SHA-256", decision.document_sha256),
    ):
        pdf.set_text_color(*MUTED)
        pdf.cell(30, 6, _text(label))
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
