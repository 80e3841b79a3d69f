"""Invoices and estimates as PDF, with fpdf2 (pure Python: nothing to install beside it).

The core fonts cover Windows-1252 (dashes, curly quotes, the euro sign); anything outside
it prints as "?", so a stray emoji in a line description cannot break the download."""

from __future__ import annotations

from fpdf import FPDF

from crm_events.formatting import format_money
from crm_events.models import Estimate, Invoice

ENCODING = "windows-1252"


def _text(value: object) -> str:
    return str(value).encode(ENCODING, errors="replace").decode(ENCODING)


def document_pdf(document: Invoice | Estimate, *, locale: str) -> bytes:
    """The document as a one-or-more-page A4 PDF: business, customer, lines, total."""
    is_invoice = isinstance(document, Invoice)
    kind = "Invoice" if is_invoice else "Estimate"
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
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _text(business.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    contact = " · ".join(x for x in (business.phone_display, business.email) if x)
    pdf.cell(0, 6, _text(contact.replace("·", "|")), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _text(f"{kind} #{document.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    facts = [("Status", document.get_status_display()), ("For", customer.name)]
    if document.project is not None:
        facts.append(("Project", f"{document.project.code} {document.project.title}"))
    if document.issued_at:
        facts.append(("Issued", f"{document.issued_at:%b %d, %Y}"))
    if is_invoice and document.due_on:
        facts.append(("Due", f"{document.due_on:%b %d, %Y}"))
    if not is_invoice and document.valid_until:
        facts.append(("Valid until", f"{document.valid_until:%b %d, %Y}"))
    for label, value in facts:
        pdf.cell(30, 6, _text(label))
        pdf.cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    widths = (95, 20, 35, 35)
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_fill_color(228, 238, 248)
    for width, head, align in zip(
        widths, ("Description", "Qty", "Unit price", "Amount"), "LRRR", strict=True
    ):
        pdf.cell(width, 8, head, border="B", align=align, fill=True)
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in document.lines.all():
        quantity = f"{line.quantity.normalize():f}"
        cells = (line.description, quantity, cash(line.unit_price), cash(line.amount))
        for width, value, align in zip(widths, cells, "LRRR", strict=True):
            pdf.cell(width, 7, _text(value)[:60], border="B", align=align)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(sum(widths[:3]), 9, "Total", align="R")
    pdf.cell(widths[3], 9, cash(document.total), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
