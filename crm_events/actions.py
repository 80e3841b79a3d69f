"""Writes for the CRM: every change of an appointment, invoice, estimate, contract or call,
and the card it posts in the customer's thread.

Called alike by the event API, the admin, the portal's buttons, the staff chat modal and the
automations. Each verb opens its own transaction and locks the record it changes; each card
goes through `messaging.actions` with an idempotency key made from the record and the change
(`crm:invoice:<id>:sent`), so the admin saving twice, the API replaying and an automation
re-running make one card. Bad input raises `ValidationError` before anything is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crm_events.formatting import format_money, time_range, valid_currency
from crm_events.models import (
    Appointment,
    Call,
    Contract,
    CrmSettings,
    Estimate,
    EstimateLine,
    Invoice,
    InvoiceLine,
    money,
)
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Business, Customer, Project

CardKind = Entry.CardKind

# Loading history (the demo) records cards and messages without notifying anyone.
_history = contextvars.ContextVar("crm_history", default=False)


@contextlib.contextmanager
def importing_history() -> Iterator[None]:
    """Within this block CRM changes post their cards and messages with notify=False, and
    keyword handlers tell nobody either: for loading past events (the demo)."""
    token = _history.set(True)
    try:
        yield
    finally:
        _history.reset(token)


def notifying(wanted: bool = True) -> bool:
    """Whether to notify, given what the caller wants and whether history is loading."""
    return wanted and not _history.get()


@dataclass(frozen=True)
class LineData:
    description: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price)


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


def _amount(document: Invoice | Estimate) -> str:
    locale = crm_settings(document.customer.business).locale
    return format_money(document.total, document.currency, locale)


def appointment_when(appointment: Appointment) -> str:
    return time_range(appointment.starts_at, appointment.ends_at, appointment.customer.time_zone)


def _card(
    *,
    customer: Customer,
    card_kind: str,
    title: str,
    link_url: str,
    project: Project | None,
    key: str,
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Entry:
    return thread_actions.post_event_card(
        thread=thread_actions.ensure_thread(customer=customer),
        card_kind=card_kind,
        title=title,
        link_url=link_url,
        project=project,
        idempotency_key=key,
        at=at,
        notify=notifying(notify),
    )


# -- checks shared by every writer -----------------------------------------------------------


def check_project(*, customer: Customer, project: Project | None) -> None:
    if project is not None and project.customer_id != customer.pk:
        raise ValidationError(
            "Project %(code)s belongs to another customer.",
            code="wrong_project",
            params={"code": project.code},
        )


def _check_lines(lines: Sequence[LineData], total: Decimal | None) -> Decimal:
    if not lines:
        raise ValidationError("A document needs at least one line.", code="no_lines")
    for line in lines:
        if not line.description.strip():
            raise ValidationError("Every line needs a description.", code="bad_line")
        if line.quantity <= 0:
            raise ValidationError("Quantities must be more than zero.", code="bad_quantity")
        if line.unit_price < 0:
            raise ValidationError("Prices cannot be negative.", code="negative_money")
    computed = money(sum((line.amount for line in lines), Decimal(0)))
    if total is not None and money(total) != computed:
        raise ValidationError(
            "The total %(total)s does not match its lines, which add up to %(computed)s.",
            code="total_mismatch",
            params={"total": f"{money(total)}", "computed": f"{computed}"},
        )
    if computed >= Decimal("1e10"):
        raise ValidationError("That amount is too large.", code="too_large")
    return computed


def _check_currency(currency: str) -> str:
    currency = (currency or "").strip().upper()
    if not valid_currency(currency):
        raise ValidationError(
            "“%(c)s” is not a currency code.", code="bad_currency", params={"c": currency}
        )
    return currency


def _same_lines(existing, lines: Sequence[LineData]) -> bool:
    have = [(ln.description, ln.quantity, ln.unit_price) for ln in existing]
    want = [(ln.description.strip(), ln.quantity, money(ln.unit_price)) for ln in lines]
    return have == want


def _conflict(document: str, number: str) -> ValidationError:
    return ValidationError(
        "%(doc)s #%(number)s already exists with different content.",
        code="conflict",
        params={"doc": document, "number": number},
    )


# -- invoices --------------------------------------------------------------------------------


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
) -> Invoice:
    """Record invoice `number` as sent, with its lines, and card it once. Sending the same
    invoice again changes nothing; the same number with other content is refused."""
    check_project(customer=customer, project=project)
    number = number.strip()
    currency = _check_currency(currency)
    computed = _check_lines(lines, total)
    invoice = Invoice.objects.select_for_update().filter(number=number).first()
    if invoice is not None:
        same = (
            invoice.customer_id == customer.pk
            and invoice.total == computed
            and invoice.currency == currency
            and invoice.due_on == due_on
            and _same_lines(invoice.lines.all(), lines)
        )
        if not same:
            raise _conflict("Invoice", number)
        if invoice.status != Invoice.Status.DRAFT:
            invoice_changed(invoice=invoice, at=at)
            return invoice
    else:
        invoice = Invoice.objects.create(
            customer=customer,
            project=project,
            number=number,
            currency=currency,
            total=computed,
            due_on=due_on,
            external_id=external_id,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=i,
                description=ln.description.strip(),
                quantity=ln.quantity,
                unit_price=money(ln.unit_price),
            )
            for i, ln in enumerate(lines)
        )
    invoice.status = Invoice.Status.SENT
    invoice.save(update_fields=["status", "updated_at"])
    invoice_changed(invoice=invoice, at=at)
    return invoice


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
def invoice_changed(*, invoice: Invoice, at: dt.datetime | None = None) -> Entry | None:
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
        Invoice.Status.SENT: f"Invoice #{invoice.number} sent — {_amount(invoice)}",
        Invoice.Status.PAID: f"Invoice #{invoice.number} paid",
        Invoice.Status.VOID: f"Invoice #{invoice.number} voided",
    }[invoice.status]
    if invoice.status != Invoice.Status.SENT:
        # A paid or voided invoice was sent first: its "sent" card comes before.
        _card(
            customer=invoice.customer,
            card_kind=CardKind.INVOICE,
            title=f"Invoice #{invoice.number} sent — {_amount(invoice)}",
            link_url=invoice_url(invoice),
            project=invoice.project,
            key=f"crm:invoice:{invoice.pk}:sent",
            at=at,
        )
    return _card(
        customer=invoice.customer,
        card_kind=CardKind.INVOICE,
        title=title,
        link_url=invoice_url(invoice),
        project=invoice.project,
        key=f"crm:invoice:{invoice.pk}:{invoice.status}",
        at=at,
    )


def recompute_total(*, document: Invoice | Estimate) -> Decimal:
    """Set a document's total from its lines (the admin edits lines, never the total)."""
    total = money(sum((line.amount for line in document.lines.all()), Decimal(0)))
    if total != document.total:
        document.total = total
        type(document).objects.filter(pk=document.pk).update(total=total)
    return total


# -- estimates -------------------------------------------------------------------------------


@transaction.atomic
def send_estimate(
    *,
    customer: Customer,
    number: str,
    lines: Sequence[LineData],
    currency: str,
    project: Project | None = None,
    total: Decimal | None = None,
    valid_until: dt.date | None = None,
    external_id: str = "",
    at: dt.datetime | None = None,
) -> Estimate:
    """Record estimate `number` as sent, and card it once (see `send_invoice`)."""
    check_project(customer=customer, project=project)
    number = number.strip()
    currency = _check_currency(currency)
    computed = _check_lines(lines, total)
    estimate = Estimate.objects.select_for_update().filter(number=number).first()
    if estimate is not None:
        same = (
            estimate.customer_id == customer.pk
            and estimate.total == computed
            and estimate.currency == currency
            and estimate.valid_until == valid_until
            and _same_lines(estimate.lines.all(), lines)
        )
        if not same:
            raise _conflict("Estimate", number)
        if estimate.status != Estimate.Status.DRAFT:
            estimate_changed(estimate=estimate, at=at)
            return estimate
    else:
        estimate = Estimate.objects.create(
            customer=customer,
            project=project,
            number=number,
            currency=currency,
            total=computed,
            valid_until=valid_until,
            external_id=external_id,
        )
        EstimateLine.objects.bulk_create(
            EstimateLine(
                estimate=estimate,
                position=i,
                description=ln.description.strip(),
                quantity=ln.quantity,
                unit_price=money(ln.unit_price),
            )
            for i, ln in enumerate(lines)
        )
    estimate.status = Estimate.Status.SENT
    estimate.save(update_fields=["status", "updated_at"])
    estimate_changed(estimate=estimate, at=at)
    return estimate


def find_estimate(*, customer: Customer, number: str) -> Estimate:
    estimate = Estimate.objects.filter(customer=customer, number=number.strip()).first()
    if estimate is None:
        raise ValidationError(
            "This customer has no estimate #%(n)s.", code="unknown_record", params={"n": number}
        )
    return estimate


@transaction.atomic
def decide_estimate(
    *,
    estimate: Estimate,
    approve: bool,
    by_customer: bool = False,
    at: dt.datetime | None = None,
) -> Estimate:
    """The estimate is approved or declined, once. From the portal (`by_customer`) the
    decision is also a message to the business, so they hear of it on their usual channel
    and see it unread in the staff list; the card itself does not notify the customer, who
    just made the decision."""
    locked = Estimate.objects.select_for_update().select_related("customer").get(pk=estimate.pk)
    decision = Estimate.Status.APPROVED if approve else Estimate.Status.DECLINED
    if locked.status == decision:
        return locked
    if locked.status != Estimate.Status.SENT:
        raise ValidationError(
            "Estimate #%(n)s is %(s)s already.",
            code="bad_transition",
            params={"n": locked.number, "s": locked.get_status_display().lower()},
        )
    if by_customer and locked.valid_until and locked.valid_until < timezone.localdate():
        raise ValidationError(
            "Estimate #%(n)s expired on %(d)s; ask us for a new one.",
            code="expired",
            params={"n": locked.number, "d": f"{locked.valid_until:%b %-d, %Y}"},
        )
    locked.status = decision
    locked.decided_at = at or timezone.now()
    locked.save(update_fields=["status", "decided_at", "updated_at"])
    estimate_changed(estimate=locked, at=at, notify=not by_customer)
    if by_customer:
        verb = "approve" if approve else "decline"
        thread_actions.post_customer_reply(
            customer=locked.customer,
            body=f"I {verb} Estimate #{locked.number} ({_amount(locked)}).",
            channel=Entry.Channel.PORTAL,
            project=locked.project,
            idempotency_key=f"crm:estimate:{locked.pk}:{decision}:message",
            at=at,
            notify=notifying(),
        )
    return locked


@transaction.atomic
def estimate_changed(
    *, estimate: Estimate, at: dt.datetime | None = None, notify: bool = True
) -> Entry | None:
    """Card the estimate's current status, once per estimate and status."""
    if estimate.status == Estimate.Status.DRAFT:
        return None
    if estimate.issued_at is None:
        estimate.issued_at = at or timezone.now()
        Estimate.objects.filter(pk=estimate.pk).update(issued_at=estimate.issued_at)
    sent = _card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=f"Estimate #{estimate.number} sent — {_amount(estimate)}",
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:sent",
        at=at,
    )
    if estimate.status == Estimate.Status.SENT:
        return sent
    word = "approved" if estimate.status == Estimate.Status.APPROVED else "declined"
    return _card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=f"Estimate #{estimate.number} {word}",
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:{estimate.status}",
        at=at,
        notify=notify,
    )


# -- contracts -------------------------------------------------------------------------------


@transaction.atomic
def send_contract(
    *,
    customer: Customer,
    number: str,
    title: str,
    project: Project | None = None,
    external_id: str = "",
    at: dt.datetime | None = None,
) -> Contract:
    check_project(customer=customer, project=project)
    number, title = number.strip(), title.strip()
    if not title:
        raise ValidationError("A contract needs a title.", code="bad_title")
    contract = Contract.objects.select_for_update().filter(number=number).first()
    if contract is None:
        contract = Contract.objects.create(
            customer=customer,
            project=project,
            number=number,
            title=title,
            external_id=external_id,
            status=Contract.Status.SENT,
        )
    elif contract.customer_id != customer.pk or contract.title != title:
        raise _conflict("Contract", number)
    contract_changed(contract=contract, at=at)
    return contract


@transaction.atomic
def contract_changed(*, contract: Contract, at: dt.datetime | None = None) -> Entry | None:
    if contract.status == Contract.Status.DRAFT:
        return None
    if contract.sent_at is None:
        contract.sent_at = at or timezone.now()
        Contract.objects.filter(pk=contract.pk).update(sent_at=contract.sent_at)
    return _card(
        customer=contract.customer,
        card_kind=CardKind.CONTRACT,
        title=f"Contract sent — {contract.title}",
        link_url=contract_url(contract),
        project=contract.project,
        key=f"crm:contract:{contract.pk}:sent",
        at=at,
    )


# -- appointments ----------------------------------------------------------------------------


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ValidationError("Times need a UTC offset.", code="naive_time")
    if ends_at <= starts_at:
        raise ValidationError("An appointment must end after it starts.", code="ends_before_start")
    if ends_at - starts_at > dt.timedelta(days=31):
        raise ValidationError("An appointment cannot last over a month.", code="too_long")


@transaction.atomic
def schedule_appointment(
    *,
    customer: Customer,
    title: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    project: Project | None = None,
    crew_note: str = "",
    external_id: str = "",
    at: dt.datetime | None = None,
) -> Appointment:
    """Book a visit and card it. With the CRM's id, booking it again changes nothing; the
    same id with other times is a reschedule, which has its own event."""
    check_project(customer=customer, project=project)
    _check_times(starts_at, ends_at)
    title = title.strip()
    if not title:
        raise ValidationError("An appointment needs a title.", code="bad_title")
    appointment = None
    if external_id:
        appointment = (
            Appointment.objects.select_for_update().filter(external_id=external_id).first()
        )
    if appointment is not None:
        same = (
            appointment.customer_id == customer.pk
            and appointment.starts_at == starts_at
            and appointment.ends_at == ends_at
            and appointment.title == title
        )
        if not same:
            raise ValidationError(
                "Appointment %(id)s is already booked for other times; send "
                "appointment.rescheduled to move it.",
                code="conflict",
                params={"id": external_id},
            )
    else:
        appointment = Appointment.objects.create(
            customer=customer,
            project=project,
            title=title,
            starts_at=starts_at,
            ends_at=ends_at,
            crew_note=crew_note.strip(),
            external_id=external_id,
        )
    appointment_changed(appointment=appointment, at=at)
    return appointment


def find_appointment(*, customer: Customer, external_id: str) -> Appointment:
    appointment = Appointment.objects.filter(customer=customer, external_id=external_id).first()
    if appointment is None:
        raise ValidationError(
            "This customer has no appointment %(id)s.",
            code="unknown_record",
            params={"id": external_id},
        )
    return appointment


@transaction.atomic
def reschedule_appointment(
    *,
    appointment: Appointment,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    at: dt.datetime | None = None,
) -> Appointment:
    """Move a visit; it needs confirming again, and gets another reminder."""
    _check_times(starts_at, ends_at)
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if not locked.is_open:
        raise ValidationError(
            "That appointment is %(s)s.",
            code="bad_transition",
            params={"s": locked.get_status_display().lower()},
        )
    if (locked.starts_at, locked.ends_at) != (starts_at, ends_at):
        locked.starts_at, locked.ends_at = starts_at, ends_at
        locked.status = Appointment.Status.RESCHEDULED
        locked.confirmed_at = None
        locked.save(update_fields=["starts_at", "ends_at", "status", "confirmed_at", "updated_at"])
    appointment_changed(appointment=locked, at=at)
    return locked


@transaction.atomic
def set_appointment_status(
    *, appointment: Appointment, status: str, at: dt.datetime | None = None
) -> Appointment:
    """Cancel or complete a visit (once; again changes nothing)."""
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if locked.status != status:
        if not locked.is_open:
            raise ValidationError(
                "That appointment is %(s)s already.",
                code="bad_transition",
                params={"s": locked.get_status_display().lower()},
            )
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
    appointment_changed(appointment=locked, at=at)
    return locked


@transaction.atomic
def confirm_appointment(
    *, appointment: Appointment, at: dt.datetime | None = None, notify: bool = False
) -> Appointment:
    """The customer confirms a visit (Schedule button, or CONFIRM by SMS or reply). The card
    tells the customer only when `notify` (an SMS CONFIRM gets its answer by SMS)."""
    locked = (
        Appointment.objects.select_for_update().select_related("customer").get(pk=appointment.pk)
    )
    if locked.status in (Appointment.Status.CANCELLED, Appointment.Status.COMPLETED):
        raise ValidationError(
            "That appointment is %(s)s.",
            code="bad_transition",
            params={"s": locked.get_status_display().lower()},
        )
    if locked.status != Appointment.Status.CONFIRMED:
        locked.status = Appointment.Status.CONFIRMED
        locked.confirmed_at = at or timezone.now()
        locked.save(update_fields=["status", "confirmed_at", "updated_at"])
    appointment_changed(appointment=locked, at=at, notify=notify)
    return locked


def _stamp(value: dt.datetime) -> int:
    return int(value.timestamp())


@transaction.atomic
def appointment_changed(
    *, appointment: Appointment, at: dt.datetime | None = None, notify: bool = True
) -> Entry:
    """Card the visit's current state, once per visit, state and start time."""
    when = appointment_when(appointment)
    common = {
        "customer": appointment.customer,
        "card_kind": CardKind.APPOINTMENT,
        "link_url": appointment_url(appointment),
        "project": appointment.project,
        "at": at,
    }
    # Every visit was scheduled first: that card comes before any later one.
    scheduled = _card(
        **common,
        title=f"Appointment scheduled — {when}",
        key=f"crm:appointment:{appointment.pk}:scheduled",
    )
    status = appointment.status
    stamp = _stamp(appointment.starts_at)
    if status == Appointment.Status.SCHEDULED:
        return scheduled
    if status == Appointment.Status.RESCHEDULED:
        title = f"Appointment rescheduled to {when}"
        key = f"crm:appointment:{appointment.pk}:rescheduled:{stamp}"
    elif status == Appointment.Status.CONFIRMED:
        title = f"Appointment confirmed — {when}"
        key = f"crm:appointment:{appointment.pk}:confirmed:{stamp}"
    elif status == Appointment.Status.CANCELLED:
        title = f"Appointment cancelled — {when}"
        key = f"crm:appointment:{appointment.pk}:cancelled"
    else:
        title = f"Appointment completed — {appointment.title}"
        key = f"crm:appointment:{appointment.pk}:completed"
    return _card(**common, title=title, key=key, notify=notify)


def ask_to_reschedule(*, appointment: Appointment, note: str = "", idempotency_key: str) -> Entry:
    """The customer asks for another time: a message to the business, about that visit."""
    if not appointment.is_open:
        raise ValidationError("That appointment is not coming up.", code="bad_transition")
    body = f"Could we reschedule {appointment.title} ({appointment_when(appointment)})?"
    if note.strip():
        body = f"{body} {note.strip()}"
    return thread_actions.post_customer_reply(
        customer=appointment.customer,
        body=body,
        channel=Entry.Channel.PORTAL,
        project=appointment.project,
        idempotency_key=idempotency_key,
        notify=notifying(),
    )


# -- calls and messages ----------------------------------------------------------------------


@transaction.atomic
def log_call(
    *,
    customer: Customer,
    started_at: dt.datetime,
    duration_seconds: int,
    idempotency_key: str,
    direction: str = Call.Direction.OUTBOUND,
    transcript: str = "",
    author: AbstractBaseUser | None = None,
    project: Project | None = None,
    external_id: str = "",
) -> Call:
    """Record a phone call and its marker in the thread; the transcript stays with staff."""
    check_project(customer=customer, project=project)
    if duration_seconds < 0 or duration_seconds > 24 * 3600:
        raise ValidationError("A call lasts between 0 seconds and a day.", code="bad_duration")
    if timezone.is_naive(started_at):
        raise ValidationError("Times need a UTC offset.", code="naive_time")
    if direction not in Call.Direction.values:
        raise ValidationError("A call is inbound or outbound.", code="bad_direction")
    entry = thread_actions.log_call(
        thread=thread_actions.ensure_thread(customer=customer),
        started_at=started_at,
        duration_seconds=duration_seconds,
        transcript=transcript,
        author=author,
        project=project,
        idempotency_key=idempotency_key,
    )
    call, _ = Call.objects.get_or_create(
        entry=entry,
        defaults={
            "customer": customer,
            "project": project,
            "started_at": started_at,
            "duration_seconds": duration_seconds,
            "direction": direction,
            "transcript": entry.transcript,
            "author": author,
            "external_id": external_id,
        },
    )
    return call


def _greeting(customer: Customer, now: dt.datetime) -> str:
    hour = timezone.localtime(now, timezone=_zone(customer.time_zone)).hour
    if hour < 12:
        return "Good morning"
    if hour < 17:
        return "Good afternoon"
    return "Good evening"


def _zone(name: str):
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def send_crew_on_the_way(
    *,
    customer: Customer,
    eta_minutes: int,
    idempotency_key: str,
    project: Project | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """ "Our crew is on their way": urgent, so it goes at once, even in quiet hours."""
    check_project(customer=customer, project=project)
    if not 1 <= eta_minutes <= 24 * 60:
        raise ValidationError("The ETA is between 1 minute and a day.", code="bad_eta")
    now = at or timezone.now()
    if eta_minutes < 60:
        eta = f"{eta_minutes} minute{'s' if eta_minutes != 1 else ''}"
    else:
        hours, minutes = divmod(eta_minutes, 60)
        eta = f"{hours} hour{'s' if hours != 1 else ''}" + (f" {minutes} min" if minutes else "")
    body = (
        f"{_greeting(customer, now)} {customer.first_name}! Our crew is on their way — "
        f"arriving in about {eta}."
    )
    return thread_actions.post_automated_message(
        thread=thread_actions.ensure_thread(customer=customer),
        body=body,
        channel=Entry.Channel.SMS,
        project=project,
        urgent=True,
        idempotency_key=idempotency_key,
        at=at,
        notify=notifying(),
    )


def post_automated(
    *,
    customer: Customer,
    body: str,
    idempotency_key: str,
    channel: str = Entry.Channel.SMS,
    urgent: bool = False,
    project: Project | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """A message from an automation (the CRM's, or ours), labelled Automated in the thread."""
    check_project(customer=customer, project=project)
    return thread_actions.post_automated_message(
        thread=thread_actions.ensure_thread(customer=customer),
        body=body,
        channel=channel,
        project=project,
        urgent=urgent,
        idempotency_key=idempotency_key,
        at=at,
        notify=notifying(),
    )
