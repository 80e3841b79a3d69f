"""What every CRM writer shares: the business's CRM settings, the links and titles of cards,
posting a card, what a transition returns and the check of a transition table, and the checks
made before anything is written (the project, the lines and their money, the currency, a number
reused with other content).

Nothing here knows one record's lifecycle, and nothing here imports the modules that do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.urls import reverse

from crm_events.formatting import format_money, time_range, valid_currency
from crm_events.models import (
    Appointment,
    Contract,
    CrmSettings,
    Estimate,
    Invoice,
    document_number,
    money,
)
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Business, Customer, Project


@dataclass(frozen=True)
class LineData:
    description: str
    quantity: Decimal
    unit_price: Decimal
    # Estimates only: a line outside the total that the customer may choose.
    optional: bool = False

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price)


@dataclass(frozen=True)
class Transition:
    """What a CRM verb did to one record: the record as it now is, its status before
    (empty for a record created now) and after, and the card in the thread for the status it
    is in (None for a draft). Asking for the status a record already has changes nothing and
    returns that status's card again, so a replayed event answers as the first did."""

    record: Any
    before: str
    after: str
    card: Entry | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def check_transition(*, record: Any, to: str, table: Mapping[str, set[str]], name: str) -> None:
    """Refuse moving `record` to status `to` unless its kind's `table` allows it from the
    status it has. The tables live beside each kind's transition function, the only writer of
    its status; forms call this too, to refuse before saving anything."""
    allowed = table.get(record.status, set())
    if to not in allowed:
        params = {"name": name, "s": record.get_status_display().lower(), "new": to}
        if not allowed:  # a final status
            raise ValidationError(
                "%(name)s is %(s)s already.", code="bad_transition", params=params
            )
        raise ValidationError(
            "%(name)s is %(s)s; it cannot become %(new)s.", code="bad_transition", params=params
        )


def crm_settings(business: Business) -> CrmSettings:
    """The business's CRM settings, created with the defaults on first use."""
    found, _ = CrmSettings.objects.get_or_create(business=business)
    return found


# -- links and titles ------------------------------------------------------------------------


def invoice_url(invoice: Invoice) -> str:
    return reverse("crm_invoice", args=[invoice.number])


def estimate_url(estimate: Estimate) -> str:
    return reverse("crm_estimate", args=[estimate.number])


def appointment_url(appointment: Appointment) -> str:
    # One Schedule page; the query names the visit (for staff, who are sent to its own page),
    # the fragment scrolls the customer to it.
    return f"{reverse('schedule')}?appointment={appointment.pk}#appointment-{appointment.pk}"


def contract_url(contract: Contract) -> str:
    return f"{reverse('project')}?contract={contract.pk}#contract-{contract.pk}"


def formatted_total(document: Invoice | Estimate) -> str:
    return format_amount(document, document.total)


def format_amount(document: Invoice | Estimate, amount: Decimal) -> str:
    """`amount` in the document's currency, written as its business writes money."""
    locale = crm_settings(document.customer.business).locale
    return format_money(amount, document.currency, locale)


def appointment_when(appointment: Appointment) -> str:
    return time_range(appointment.starts_at, appointment.ends_at, appointment.customer.time_zone)


def post_card(
    *,
    customer: Customer,
    card_kind: str,
    title: str,
    link_url: str,
    project: Project | None,
    key: str,
    at: dt.datetime | None = None,
    notify: bool = True,
    from_customer: bool = False,
    action_label: str = "",
    action_url: str = "",
) -> Entry:
    return thread_actions.post_event_card(
        thread=thread_actions.ensure_thread(customer=customer),
        card_kind=card_kind,
        title=title,
        link_url=link_url,
        project=project,
        idempotency_key=key,
        at=at,
        notify=notify,
        from_customer=from_customer,
        action_label=action_label,
        action_url=action_url,
    )


# -- checks shared by every writer -----------------------------------------------------------


def check_project(*, customer: Customer, project: Project | None) -> None:
    if project is not None and project.customer_id != customer.pk:
        raise ValidationError(
            "Project %(code)s belongs to another customer.",
            code="wrong_project",
            params={"code": project.code},
        )


def check_lines(lines: Sequence[LineData], total: Decimal | None) -> Decimal:
    if not lines:
        raise ValidationError("A document needs at least one line.", code="no_lines")
    for line in lines:
        if not line.description.strip():
            raise ValidationError("Every line needs a description.", code="bad_line")
        if line.quantity <= 0:
            raise ValidationError("Quantities must be more than zero.", code="bad_quantity")
        if line.unit_price < 0:
            raise ValidationError("Prices cannot be negative.", code="negative_money")
    # Optional lines are not in the total: the customer adds them when approving (an
    # estimate of options only totals zero until they choose).
    computed = money(sum((line.amount for line in lines if not line.optional), Decimal(0)))
    if total is not None and money(total) != computed:
        raise ValidationError(
            "The total %(total)s does not match its lines, which add up to %(computed)s.",
            code="total_mismatch",
            params={"total": f"{money(total)}", "computed": f"{computed}"},
        )
    if computed >= Decimal("1e10"):
        raise ValidationError("That amount is too large.", code="too_large")
    return computed


def check_https_url(url: str, *, field: str) -> str:
    """An https address (a payment page, a receipt), or "" for none."""
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or len(url) > 500
        or any(c.isspace() for c in url)
    ):
        raise ValidationError(
            "%(field)s must be an https:// address.", code="insecure_url", params={"field": field}
        )
    return url


def pay_label(invoice: Invoice) -> str:
    """ "Pay $4,200 — checkout.stripe.com": what is due, and where the customer is sent."""
    return f"Pay {format_amount(invoice, invoice.balance_due)} — {invoice.payment_host}"


def check_currency(currency: str) -> str:
    currency = (currency or "").strip().upper()
    if not valid_currency(currency):
        raise ValidationError(
            "“%(c)s” is not a currency code.", code="bad_currency", params={"c": currency}
        )
    return currency


def same_lines(existing, lines: Sequence[LineData]) -> bool:
    have = [(ln.description, ln.quantity, ln.unit_price) for ln in existing]
    want = [(ln.description.strip(), ln.quantity, money(ln.unit_price)) for ln in lines]
    return have == want


def conflict_error(document: str, number: str) -> ValidationError:
    return ValidationError(
        "%(doc)s #%(number)s already exists with different content.",
        code="conflict",
        params={"doc": document, "number": number},
    )


def record_sent_document(
    *,
    model: type[Invoice] | type[Estimate],
    transition: Callable[[Invoice | Estimate, str], Transition],
    customer: Customer,
    project: Project | None,
    number: str,
    lines: Sequence[LineData],
    currency: str,
    total: Decimal | None,
    dates: dict[str, dt.date | None],
    external_id: str,
) -> Transition:
    """Record priced document `number` (an invoice or an estimate) with its lines, and move
    it to sent with `transition` (its kind's transition function), which cards it once.
    Sending the same document again changes nothing and returns the card of the status it
    is in; the same number with other content is refused. `dates` are the model's own
    (due_on, valid_until). Callers hold a transaction; the project was checked by them."""
    number = number.strip()
    document_number(number)  # it becomes an address and a file name
    currency = check_currency(currency)
    computed = check_lines(lines, total)
    document = model.objects.select_for_update().filter(number=number).first()
    if document is not None:
        same = (
            document.customer_id == customer.pk
            and document.total == computed
            and document.currency == currency
            and all(getattr(document, name) == value for name, value in dates.items())
            and same_lines(document.lines.all(), lines)
        )
        if not same:
            raise conflict_error(model._meta.verbose_name.capitalize(), number)
        if document.status != model.Status.DRAFT:
            return transition(document, document.status)
    else:
        document = model.objects.create(
            customer=customer,
            project=project,
            number=number,
            currency=currency,
            total=computed,
            external_id=external_id,
            **dates,
        )
        line_model = document.lines.model
        line_model.objects.bulk_create(
            line_model(
                **{document.lines.field.name: document},
                position=i,
                description=ln.description.strip(),
                quantity=ln.quantity,
                unit_price=money(ln.unit_price),
            )
            for i, ln in enumerate(lines)
        )
    return transition(document, model.Status.SENT)


# -- totals of invoices and estimates -------------------------------------------------------


def recompute_total(*, document: Invoice | Estimate) -> Decimal:
    """Set a document's total from its lines (the admin edits lines, never the total)."""
    total = money(sum((line.amount for line in document.lines.all()), Decimal(0)))
    if total != document.total:
        document.total = total
        type(document).objects.filter(pk=document.pk).update(total=total)
    return total
