"""Invoices: sent with their lines, then paid or voided; each status carded once.

`transition_invoice` is the only writer of `Invoice.status` (tests/crm_events/
test_one_status_writer.py keeps it so): the API, the admin's buttons and list actions all move
an invoice through it and its table.
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
    Transition,
    check_project,
    check_transition,
    formatted_total,
    invoice_url,
    post_card,
    record_sent_document,
)
from crm_events.models import Invoice
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind
Status = Invoice.Status

# Where an invoice may go from each status. Asking for the status it has is not a move: it
# changes nothing (a replay) and is always allowed.
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.SENT},
    Status.SENT: {Status.PAID, Status.VOID},
    Status.PAID: {Status.VOID},
    Status.VOID: set(),
}
# The date each status stamps (once: a later move keeps the earlier stamps).
_STAMPS = {Status.SENT: "issued_at", Status.PAID: "paid_at", Status.VOID: "voided_at"}


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
) -> Transition:
    """Record invoice `number` as sent, with its lines, and card it once (telling the
    customer unless `notify` is False: history, the demo). Sending the same invoice again
    changes nothing; the same number with other content is refused."""
    check_project(customer=customer, project=project)
    return record_sent_document(
        model=Invoice,
        transition=lambda invoice, to: transition_invoice(
            invoice=invoice, to=to, at=at, notify=notify
        ),
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
def transition_invoice(
    *, invoice: Invoice, to: str, at: dt.datetime | None = None, notify: bool = True
) -> Transition:
    """Move an invoice to status `to` as TRANSITIONS allows, stamp that status's date, and
    card it once. The only writer of an invoice's status."""
    locked = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=invoice.pk)
    )
    before = locked.status
    if to != before:
        name = f"Invoice #{locked.number}"
        check_transition(record=locked, to=to, table=TRANSITIONS, name=name)
        if to == Status.SENT and not locked.lines.exists():
            raise ValidationError("%(n)s has no lines.", code="no_lines", params={"n": name})
        now = at or timezone.now()
        locked.status = to
        fields = ["status", "updated_at"]
        for field in dict.fromkeys(("issued_at", _STAMPS[to])):
            if getattr(locked, field) is None:
                setattr(locked, field, now)
                fields.append(field)
        locked.save(update_fields=fields)
    return Transition(
        record=locked, before=before, after=locked.status, card=_card(locked, at, notify=notify)
    )


def _card(invoice: Invoice, at: dt.datetime | None, *, notify: bool) -> Entry | None:
    """The card of the invoice's current status, posted once per invoice and status."""
    if invoice.status == Status.DRAFT:
        return None  # drafts are not the customer's business yet
    title = {
        Status.SENT: f"Invoice #{invoice.number} sent — {formatted_total(invoice)}",
        Status.PAID: f"Invoice #{invoice.number} paid",
        Status.VOID: f"Invoice #{invoice.number} voided",
    }[invoice.status]
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
