"""Invoices: sent with their lines, then paid or voided; each status carded once.

The admin edits an invoice directly and calls `invoice_changed` after every save, so the
dates and cards follow whatever status it was given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import (
    LineData,
    formatted_total,
    invoice_url,
    post_card,
    record_sent_document,
)
from crm_events.models import Invoice
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind


@transaction.atomic
def send_invoice(
    *,
    customer: Customer,
    number: str,
    lines: Sequence[LineData],
    currency: str,
    project: Project | None = None,
    total: Decimal | None = None,
    due_on: dt.date | None = None,
    external_id: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Invoice:
    """Record invoice `number` as sent, with its lines, and card it once (telling the
    customer unless `notify` is False: history, the demo). Sending the same invoice again
    changes nothing; the same number with other content is refused."""
    return record_sent_document(
        model=Invoice,
        changed=lambda invoice: invoice_changed(invoice=invoice, at=at, notify=notify),
        customer=customer,
        project=project,
        number=number,
        lines=lines,
        currency=currency,
        total=total,
        dates={"due_on": due_on},
        external_id=external_id,
    )


def find_invoice(*, customer: Customer, number: str) -> Invoice:
    invoice = Invoice.objects.filter(customer=customer, number=number.strip()).first()
    if invoice is None:
        raise ValidationError(
            "This customer has no invoice #%(n)s.", code="unknown_record", params={"n": number}
        )
    return invoice


@transaction.atomic
def set_invoice_status(*, invoice: Invoice, status: str, at: dt.datetime | None = None) -> Invoice:
    """Mark an invoice paid or void (once; doing it again changes nothing)."""
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    allowed = {
        Invoice.Status.PAID: {Invoice.Status.SENT, Invoice.Status.PAID},
        Invoice.Status.VOID: {Invoice.Status.SENT, Invoice.Status.PAID, Invoice.Status.VOID},
    }[status]
    if locked.status not in allowed:
        raise ValidationError(
            "Invoice #%(n)s is %(s)s; it cannot become %(new)s.",
            code="bad_transition",
            params={"n": locked.number, "s": locked.get_status_display().lower(), "new": status},
        )
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    invoice_changed(invoice=locked, at=at)
    return locked


@transaction.atomic
def invoice_changed(
    *, invoice: Invoice, at: dt.datetime | None = None, notify: bool = True
) -> Entry | None:
    """Stamp the dates of the invoice's current status and card that status in the thread,
    once per invoice and status. The admin calls it after every save."""
    now = at or timezone.now()
    stamp_fields = {
        Invoice.Status.SENT: "issued_at",
        Invoice.Status.PAID: "paid_at",
        Invoice.Status.VOID: "voided_at",
    }
    field = stamp_fields.get(invoice.status)
    if field is None:
        return None  # drafts are not the customer's business yet
    if invoice.issued_at is None or getattr(invoice, field) is None:
        invoice.issued_at = invoice.issued_at or now
        setattr(invoice, field, getattr(invoice, field) or now)
        stamps = {"issued_at": invoice.issued_at, field: getattr(invoice, field)}
        Invoice.objects.filter(pk=invoice.pk).update(**stamps)
    title = {
        Invoice.Status.SENT: f"Invoice #{invoice.number} sent — {formatted_total(invoice)}",
        Invoice.Status.PAID: f"Invoice #{invoice.number} paid",
        Invoice.Status.VOID: f"Invoice #{invoice.number} voided",
    }[invoice.status]
    if invoice.status != Invoice.Status.SENT:
        # A paid or voided invoice was sent first: its "sent" card comes before.
        post_card(
            customer=invoice.customer,
            card_kind=CardKind.INVOICE,
            title=f"Invoice #{invoice.number} sent — {formatted_total(invoice)}",
            link_url=invoice_url(invoice),
            project=invoice.project,
            key=f"crm:invoice:{invoice.pk}:sent",
            at=at,
        )
    return post_card(
        customer=invoice.customer,
        card_kind=CardKind.INVOICE,
        title=title,
        link_url=invoice_url(invoice),
        project=invoice.project,
        key=f"crm:invoice:{invoice.pk}:{invoice.status}",
        at=at,
        notify=notify,
    )
