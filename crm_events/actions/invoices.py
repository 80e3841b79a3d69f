"""Invoices: sent with their lines and where to pay, then paid (in one payment or several:
each a receipt card) or voided; each status carded once.

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
    check_https_url,
    check_project,
    check_transition,
    format_amount,
    formatted_total,
    invoice_url,
    pay_label,
    post_card,
    record_sent_document,
)
from crm_events.models import Invoice, Payment, money
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind
Status = Invoice.Status

# Where an invoice may go from each status. Asking for the status it has is not a move: it
# changes nothing (a replay) and is always allowed.
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.SENT},
    Status.SENT: {Status.PARTIALLY_PAID, Status.PAID, Status.VOID},
    # Only a payment moves it on (record_payment): paid when the balance reaches zero.
    Status.PARTIALLY_PAID: {Status.PAID, Status.VOID},
    Status.PAID: {Status.VOID},
    Status.VOID: set(),
}
# The date each status stamps (once: a later move keeps the earlier stamps).
_STAMPS = {
    Status.SENT: "issued_at",
    Status.PARTIALLY_PAID: "issued_at",
    Status.PAID: "paid_at",
    Status.VOID: "voided_at",
}


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
    payment_url: str = "",
    external_id: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Transition:
    """Record invoice `number` as sent, with its lines and where to pay it, and card it once
    (telling the customer unless `notify` is False: history, the demo). Sending the same
    invoice again changes nothing; the same number with other content is refused."""
    check_project(customer=customer, project=project)
    payment_url = check_https_url(payment_url, field="payment_url")
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
        dates={"due_on": due_on, "payment_url": payment_url},
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


@transaction.atomic
def pay_invoice(
    *,
    invoice: Invoice,
    amount: Decimal | None = None,
    method: str = "",
    receipt_url: str = "",
    payment_id: str = "",
    at: dt.datetime | None = None,
) -> Transition:
    """`invoice.paid`: with an `amount`, one payment (record_payment); without, the invoice
    is marked paid as a whole, as the admin's button does."""
    if amount is None:
        return transition_invoice(invoice=invoice, to=Status.PAID, at=at)
    return record_payment(
        invoice=invoice,
        amount=amount,
        method=method,
        receipt_url=receipt_url,
        payment_id=payment_id,
        at=at,
    )


@transaction.atomic
def record_payment(
    *,
    invoice: Invoice,
    amount: Decimal,
    payment_id: str,
    method: str = "",
    receipt_url: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Transition:
    """One payment of the invoice, once per CRM `payment_id` (the same id again changes
    nothing and answers as the first did). It is a receipt card in the thread ("Payment
    received — $1,000 by card · Balance $3,200"); the invoice becomes partially paid, or paid
    when the balance reaches zero. A payment larger than the balance, of a draft or a void
    invoice, or of nothing, is refused."""
    locked = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=invoice.pk)
    )
    payment_id = (payment_id or "").strip()
    if not payment_id:
        raise ValidationError("A payment needs the CRM's payment id.", code="no_payment_id")
    existing = Payment.objects.filter(external_id=payment_id).first()
    if existing is not None:
        if existing.invoice_id != locked.pk or existing.amount != money(amount):
            raise ValidationError(
                "Payment %(id)s was recorded already, for other content.",
                code="conflict",
                params={"id": payment_id},
            )
        return Transition(
            record=locked,
            before=locked.status,
            after=locked.status,
            card=_receipt_card(locked, existing, balance=None),
        )
    name = f"Invoice #{locked.number}"
    amount = money(amount)
    if amount <= 0:
        raise ValidationError("A payment is more than zero.", code="negative_money")
    if locked.status not in (Status.SENT, Status.PARTIALLY_PAID):
        raise ValidationError(
            "%(n)s is %(s)s; it takes no payment.",
            code="bad_transition",
            params={"n": name, "s": locked.get_status_display().lower()},
        )
    balance = locked.total - locked.amount_paid
    if amount > balance:
        raise ValidationError(
            "%(amount)s is more than the balance due on %(n)s, %(balance)s.",
            code="overpaid",
            params={"amount": f"{amount}", "n": name, "balance": f"{balance}"},
        )
    receipt_url = check_https_url(receipt_url, field="receipt_url")
    payment = Payment.objects.create(
        invoice=locked,
        external_id=payment_id,
        amount=amount,
        method=(method or "").strip()[:40],
        receipt_url=receipt_url,
        paid_at=at or timezone.now(),
    )
    locked.amount_paid = money(locked.amount_paid + amount)
    locked.save(update_fields=["amount_paid", "updated_at"])
    balance = locked.total - locked.amount_paid
    card = _receipt_card(locked, payment, balance=balance, notify=notify)
    to = Status.PAID if balance <= 0 else Status.PARTIALLY_PAID
    change = transition_invoice(invoice=locked, to=to, at=at, notify=notify)
    return Transition(record=change.record, before=change.before, after=change.after, card=card)


def _receipt_card(
    invoice: Invoice, payment: Payment, *, balance: Decimal | None, notify: bool = True
) -> Entry:
    """ "Payment received — $1,000 by card · Balance $3,200", once per payment; it opens the
    processor's receipt when there is one, else the invoice."""
    title = f"Payment received — {format_amount(invoice, payment.amount)}"
    if payment.method:
        title += f" by {payment.method}"
    if balance is not None:
        title += (
            f" · Balance {format_amount(invoice, balance)}" if balance > 0 else " · Paid in full"
        )
    # Still something to pay: the receipt offers to pay the rest (the amount on the invoice's
    # own card is what was due when it was sent).
    pay = balance is not None and balance > 0 and bool(invoice.payment_url)
    return post_card(
        customer=invoice.customer,
        # "View receipt" when it opens the processor's receipt; else the invoice.
        card_kind=CardKind.PAYMENT if payment.receipt_url else CardKind.INVOICE,
        title=title,
        link_url=payment.receipt_url or invoice_url(invoice),
        project=invoice.project,
        key=f"crm:invoice:{invoice.pk}:payment:{payment.pk}",
        at=payment.paid_at,
        notify=notify,
        action_label=pay_label(invoice) if pay else "",
        action_url=invoice.payment_url if pay else "",
    )


def _card(invoice: Invoice, at: dt.datetime | None, *, notify: bool) -> Entry | None:
    """The card of the invoice's current status, posted once per invoice and status."""
    if invoice.status == Status.DRAFT:
        return None  # drafts are not the customer's business yet
    if invoice.status == Status.PARTIALLY_PAID:
        return None  # each payment is its own receipt card (record_payment)
    title = {
        Status.SENT: f"Invoice #{invoice.number} sent — {formatted_total(invoice)}",
        Status.PAID: f"Invoice #{invoice.number} paid",
        Status.VOID: f"Invoice #{invoice.number} voided",
    }[invoice.status]
    pay = invoice.status == Status.SENT and bool(invoice.payment_url)
    return post_card(
        customer=invoice.customer,
        card_kind=CardKind.INVOICE,
        title=title,
        link_url=invoice_url(invoice),
        project=invoice.project,
        key=f"crm:invoice:{invoice.pk}:{invoice.status}",
        at=at,
        notify=notify,
        action_label=pay_label(invoice) if pay else "",
        action_url=invoice.payment_url if pay else "",
    )
