"""The CRM event API's work: one event, applied in one transaction, exactly once.

`webhook-id` is the idempotency key, under a unique constraint (ApiEvent). The row is inserted
first, in the same transaction as the event's effects: a concurrent delivery of the same id
waits on the unique index until the first commits, then finds its stored answer. Refused
events roll back with everything else, so nothing of them is kept and a corrected event may
be sent again under the same id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm_events import actions
from crm_events.models import ApiEvent, Appointment, Call, Contract, Estimate, Invoice
from crm_events.schemas import Accepted
from messaging.models import Entry, Thread
from portal.actions import link_crm_id
from portal.models import Customer, Project
from portal.phones import normalize_phone


class Refused(Exception):
    """An event we will not apply; becomes an RFC 9457 problem."""

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail


@dataclass(frozen=True)
class Answer:
    status: int
    body: str  # JSON, exactly as first sent


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def receive(*, webhook_id: str, body: bytes, event) -> Answer:
    """Apply `event` once per `webhook_id`; a replay gets the first answer back."""
    digest = body_digest(body)
    stored = ApiEvent.objects.filter(webhook_id=webhook_id).first()
    if stored is not None:
        return _replay(stored, digest)
    try:
        with transaction.atomic():
            record = ApiEvent.objects.create(
                webhook_id=webhook_id,
                body_sha256=digest,
                type=event.type,
                status_code=200,
                response_body="",
            )
            accepted = _apply(webhook_id=webhook_id, event=event)
            answer = Answer(200, accepted.model_dump_json())
            ApiEvent.objects.filter(pk=record.pk).update(response_body=answer.body)
    except IntegrityError:
        # Another delivery of this id committed first (we waited for it on the index).
        stored = ApiEvent.objects.filter(webhook_id=webhook_id).first()
        if stored is None:
            # Another event (another id) created the same record at the same moment.
            raise Refused(
                409,
                "concurrent-change",
                "Concurrent change",
                "Another event changed the same record at the same moment; send this one again.",
            ) from None
        return _replay(stored, digest)
    return answer


def _replay(stored: ApiEvent, digest: str) -> Answer:
    if stored.body_sha256 != digest:
        raise Refused(
            422,
            "webhook-id-reused",
            "webhook-id reused",
            f"webhook-id {stored.webhook_id} was already used for a different event; "
            "each event needs its own id.",
        )
    return Answer(stored.status_code, stored.response_body)


# -- applying one event ----------------------------------------------------------------------


def find_customer(ref) -> Customer:
    customers = Customer.objects.select_related("business", "user")
    if ref.id is not None:
        found, named = customers.filter(pk=ref.id).first(), f"id {ref.id}"
    elif ref.email is not None:
        found, named = customers.filter(email__iexact=ref.email).first(), f"email {ref.email}"
    else:
        try:
            phone = normalize_phone(ref.phone)
        except ValidationError:
            raise Refused(
                422,
                "invalid-phone",
                "Invalid phone number",
                f"“{ref.phone}” is not a phone number.",
            ) from None
        found, named = customers.filter(phone=phone).first(), f"phone {ref.phone}"
    if found is None:
        raise Refused(422, "unknown-customer", "Unknown customer", f"No customer has {named}.")
    return found


def find_project(code: str | None) -> Project | None:
    """The project the event names. Whose it is, is checked once, where it is used: by the
    verb that takes it, or by `_apply` for a verb that does not."""
    if code is None:
        return None
    project = Project.objects.filter(code=code).first()
    if project is None:
        raise Refused(422, "unknown-project", "Unknown project", f"No project is coded {code}.")
    return project


_CONFLICT_CODES = {"conflict", "bad_transition"}


def entry_time(customer: Customer, occurred_at: dt.datetime | None) -> dt.datetime | None:
    """The time to date the event's entry: when it happened in the CRM, unless that is in
    the future or before the thread's latest entry (the timeline must read in order)."""
    if occurred_at is None:
        return None
    try:
        # In UTC: RFC 3339 allows offsets to ±23:59, PostgreSQL reads at most ±15:59.
        occurred_at = occurred_at.astimezone(dt.UTC)
    except OverflowError:
        return None  # before year 1 in UTC: no time to date an entry by
    if occurred_at > timezone.now():
        return None
    last = Thread.objects.filter(customer=customer).values_list("last_entry_at", flat=True)
    latest = last.first()
    if latest is not None and occurred_at < latest:
        return None
    return occurred_at


@dataclass(frozen=True)
class Source:
    """One event, resolved: what a mapper turns into its verb's arguments."""

    customer: Customer
    project: Project | None
    data: Any
    at: dt.datetime | None
    webhook_id: str


def _apply(*, webhook_id: str, event) -> Accepted:
    customer = find_customer(event.customer)
    if event.customer.crm_id is not None:
        try:
            link_crm_id(customer=customer, crm_id=event.customer.crm_id)
        except ValidationError as error:
            raise Refused(
                409, "crm-id-conflict", "Event refused", " ".join(error.messages)
            ) from None
    project = find_project(event.project)
    at = entry_time(customer, event.occurred_at)
    source = Source(customer, project, event.data, at, webhook_id)
    verb, mapper = EVENTS[event.type]
    try:
        arguments = mapper(source)
        if "project" not in arguments:
            # A verb that only names a record ignores the project; it must still be hers.
            actions.check_project(customer=customer, project=project)
        record, entry = _outcome(verb(**arguments))
    except ValidationError as error:
        code = getattr(error, "code", "") or ""
        status = 409 if code in _CONFLICT_CODES else 422
        slug = (code or "invalid").replace("_", "-")
        raise Refused(status, slug, "Event refused", " ".join(error.messages)) from None
    return Accepted(
        webhook_id=webhook_id,
        type=event.type,
        result="applied",
        record=record,
        entry_seq=entry.seq if entry is not None else None,
    )


_LINKS: dict[type, Callable[[Any], str]] = {
    Invoice: actions.invoice_url,
    Estimate: actions.estimate_url,
    Contract: actions.contract_url,
    Appointment: actions.appointment_url,
}


def _outcome(result: actions.Transition | Call | Entry) -> tuple[str | None, Entry | None]:
    """The answer's document link and entry: a record's page and the card its verb posted,
    or a call's marker (the answer names no transcript: that is for staff, in the staff chat
    only), or the message."""
    if isinstance(result, actions.Transition):
        return _LINKS[type(result.record)](result.record), result.card
    if isinstance(result, Call):
        return None, result.entry
    return None, result


def _lines(data) -> list[actions.LineData]:
    return [
        actions.LineData(ln.description, ln.quantity, ln.unit_price, getattr(ln, "optional", False))
        for ln in data.lines
    ]


def _document(s: Source, dates: dict) -> dict:
    return {
        "customer": s.customer,
        "project": s.project,
        "number": s.data.number,
        "lines": _lines(s.data),
        "currency": s.data.currency,
        "total": s.data.total,
        "external_id": s.data.id or "",
        "at": s.at,
        **dates,
    }


def _invoice(to: str):
    def arguments(s: Source) -> dict:
        invoice = actions.find_invoice(customer=s.customer, number=s.data.number)
        return {"invoice": invoice, "to": to, "at": s.at}

    return arguments


def _payment(s: Source) -> dict:
    d = s.data
    invoice = actions.find_invoice(customer=s.customer, number=d.number)
    return {
        "invoice": invoice,
        "amount": d.amount,
        "method": d.method or "",
        "receipt_url": d.receipt_url or "",
        # Without the CRM's payment id, the event's own id names the payment.
        "payment_id": d.id or f"webhook:{s.webhook_id}",
        "at": s.at if d.paid_at is None else entry_time(s.customer, d.paid_at),
    }


def _estimate(to: str):
    def arguments(s: Source) -> dict:
        estimate = actions.find_estimate(customer=s.customer, number=s.data.number)
        # The CRM decided it: it is not told back (crm_events/outbound/events.py).
        return {"estimate": estimate, "to": to, "at": s.at, "decided_by": "crm"}

    return arguments


def _appointment(s: Source, **more) -> dict:
    found = actions.find_appointment(customer=s.customer, external_id=s.data.id)
    return {"appointment": found, "at": s.at, **more}


def _call(s: Source) -> dict:
    d = s.data
    return {
        "customer": s.customer,
        "project": s.project,
        "started_at": d.started_at,
        "duration_seconds": d.duration_seconds,
        "direction": d.direction,
        "transcript": d.transcript,
        "external_id": d.id or "",
        "idempotency_key": f"crm:call:{d.id}" if d.id else f"crm:api:{s.webhook_id}",
    }


# Each event type: the action that applies it, and how its arguments come from the event.
EVENTS: dict[str, tuple[Callable[..., Any], Callable[[Source], dict]]] = {
    "invoice.sent": (
        actions.send_invoice,
        lambda s: _document(s, {"due_on": s.data.due_on, "payment_url": s.data.payment_url or ""}),
    ),
    "invoice.paid": (actions.pay_invoice, _payment),
    "invoice.voided": (actions.transition_invoice, _invoice(Invoice.Status.VOID)),
    "estimate.sent": (
        actions.send_estimate,
        lambda s: _document(s, {"valid_until": s.data.valid_until, "terms": s.data.terms}),
    ),
    "estimate.approved": (actions.transition_estimate, _estimate(Estimate.Status.APPROVED)),
    "estimate.declined": (actions.transition_estimate, _estimate(Estimate.Status.DECLINED)),
    "contract.sent": (
        actions.send_contract,
        lambda s: {
            "customer": s.customer,
            "project": s.project,
            "number": s.data.number,
            "title": s.data.title,
            "external_id": s.data.id or "",
            "at": s.at,
        },
    ),
    "appointment.scheduled": (
        actions.schedule_appointment,
        lambda s: {
            "customer": s.customer,
            "project": s.project,
            "title": s.data.title,
            "starts_at": s.data.starts_at,
            "ends_at": s.data.ends_at,
            "crew_note": s.data.crew_note,
            "external_id": s.data.id,
            "at": s.at,
        },
    ),
    "appointment.rescheduled": (
        actions.reschedule_appointment,
        lambda s: _appointment(s, starts_at=s.data.starts_at, ends_at=s.data.ends_at),
    ),
    "appointment.cancelled": (
        actions.transition_appointment,
        lambda s: _appointment(s, to=Appointment.Status.CANCELLED),
    ),
    "appointment.completed": (
        actions.transition_appointment,
        lambda s: _appointment(s, to=Appointment.Status.COMPLETED),
    ),
    "call.logged": (actions.log_call, _call),
    "message.automated": (
        actions.post_automated,
        lambda s: {
            "customer": s.customer,
            "project": s.project,
            "body": s.data.body,
            "urgent": s.data.urgent,
            "channel": s.data.channel,
            "idempotency_key": f"crm:api:{s.webhook_id}",
            "at": s.at,
        },
    ),
}
