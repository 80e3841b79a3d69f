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
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm_events import actions
from crm_events.models import ApiEvent, Appointment, Invoice
from crm_events.schemas import Accepted
from messaging.models import Entry, Thread
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


def find_project(customer: Customer, code: str | None) -> Project | None:
    if code is None:
        return None
    project = Project.objects.filter(code=code).first()
    if project is None:
        raise Refused(422, "unknown-project", "Unknown project", f"No project is coded {code}.")
    if project.customer_id != customer.pk:
        raise Refused(
            422,
            "wrong-project",
            "Project of another customer",
            f"Project {code} belongs to another customer.",
        )
    return project


_CONFLICT_CODES = {"conflict", "bad_transition"}


def entry_time(customer: Customer, occurred_at: dt.datetime | None) -> dt.datetime | None:
    """The time to date the event's entry: when it happened in the CRM, unless that is in
    the future or before the thread's latest entry (the timeline must read in order)."""
    if occurred_at is None or occurred_at > timezone.now():
        return None
    last = Thread.objects.filter(customer=customer).values_list("last_entry_at", flat=True)
    latest = last.first()
    if latest is not None and occurred_at < latest:
        return None
    return occurred_at


def _apply(*, webhook_id: str, event) -> Accepted:
    customer = find_customer(event.customer)
    project = find_project(customer, event.project)
    try:
        record, entry = _HANDLERS[event.type](
            customer=customer,
            project=project,
            data=event.data,
            at=entry_time(customer, event.occurred_at),
            webhook_id=webhook_id,
        )
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


def _lines(data) -> list[actions.LineData]:
    return [actions.LineData(ln.description, ln.quantity, ln.unit_price) for ln in data.lines]


def _last_card(customer: Customer, link: str) -> Entry | None:
    return (
        Entry.objects.filter(thread__customer=customer, link_url=link)
        .only("seq")
        .order_by("-seq")
        .first()
    )


def _invoice_sent(*, customer, project, data, at, webhook_id):
    invoice = actions.send_invoice(
        customer=customer,
        project=project,
        number=data.number,
        lines=_lines(data),
        currency=data.currency,
        total=data.total,
        due_on=data.due_on,
        external_id=data.id or "",
        at=at,
    )
    link = actions.invoice_url(invoice)
    return link, _last_card(customer, link)


def _invoice_status(status: str):
    def handle(*, customer, project, data, at, webhook_id):
        invoice = actions.find_invoice(customer=customer, number=data.number)
        invoice = actions.set_invoice_status(invoice=invoice, status=status, at=at)
        link = actions.invoice_url(invoice)
        return link, _last_card(customer, link)

    return handle


def _estimate_sent(*, customer, project, data, at, webhook_id):
    estimate = actions.send_estimate(
        customer=customer,
        project=project,
        number=data.number,
        lines=_lines(data),
        currency=data.currency,
        total=data.total,
        valid_until=data.valid_until,
        external_id=data.id or "",
        at=at,
    )
    link = actions.estimate_url(estimate)
    return link, _last_card(customer, link)


def _estimate_decided(approve: bool):
    def handle(*, customer, project, data, at, webhook_id):
        estimate = actions.find_estimate(customer=customer, number=data.number)
        estimate = actions.decide_estimate(estimate=estimate, approve=approve, at=at)
        link = actions.estimate_url(estimate)
        return link, _last_card(customer, link)

    return handle


def _contract_sent(*, customer, project, data, at, webhook_id):
    contract = actions.send_contract(
        customer=customer,
        project=project,
        number=data.number,
        title=data.title,
        external_id=data.id or "",
        at=at,
    )
    link = actions.contract_url(contract)
    return link, _last_card(customer, link)


def _appointment_scheduled(*, customer, project, data, at, webhook_id):
    appointment = actions.schedule_appointment(
        customer=customer,
        project=project,
        title=data.title,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        crew_note=data.crew_note,
        external_id=data.id,
        at=at,
    )
    link = actions.appointment_url(appointment)
    return link, _last_card(customer, link)


def _appointment_rescheduled(*, customer, project, data, at, webhook_id):
    appointment = actions.find_appointment(customer=customer, external_id=data.id)
    appointment = actions.reschedule_appointment(
        appointment=appointment, starts_at=data.starts_at, ends_at=data.ends_at, at=at
    )
    link = actions.appointment_url(appointment)
    return link, _last_card(customer, link)


def _appointment_status(status: str):
    def handle(*, customer, project, data, at, webhook_id):
        appointment = actions.find_appointment(customer=customer, external_id=data.id)
        appointment = actions.set_appointment_status(appointment=appointment, status=status, at=at)
        link = actions.appointment_url(appointment)
        return link, _last_card(customer, link)

    return handle


def _call_logged(*, customer, project, data, at, webhook_id):
    key = f"crm:call:{data.id}" if data.id else f"crm:api:{webhook_id}"
    call = actions.log_call(
        customer=customer,
        project=project,
        started_at=data.started_at,
        duration_seconds=data.duration_seconds,
        direction=data.direction,
        transcript=data.transcript,
        external_id=data.id or "",
        idempotency_key=key,
    )
    # The answer names no transcript: it is for staff, in the staff chat only.
    return None, call.entry


def _message_automated(*, customer, project, data, at, webhook_id):
    entry = actions.post_automated(
        customer=customer,
        project=project,
        body=data.body,
        urgent=data.urgent,
        channel=data.channel,
        idempotency_key=f"crm:api:{webhook_id}",
        at=at,
    )
    return None, entry


_HANDLERS = {
    "invoice.sent": _invoice_sent,
    "invoice.paid": _invoice_status(Invoice.Status.PAID),
    "invoice.voided": _invoice_status(Invoice.Status.VOID),
    "estimate.sent": _estimate_sent,
    "estimate.approved": _estimate_decided(True),
    "estimate.declined": _estimate_decided(False),
    "contract.sent": _contract_sent,
    "appointment.scheduled": _appointment_scheduled,
    "appointment.rescheduled": _appointment_rescheduled,
    "appointment.cancelled": _appointment_status(Appointment.Status.CANCELLED),
    "appointment.completed": _appointment_status(Appointment.Status.COMPLETED),
    "call.logged": _call_logged,
    "message.automated": _message_automated,
}


def problem(refused: Refused) -> dict:
    return {
        "type": f"urn:porchlight:problem:{refused.slug}",
        "title": refused.title,
        "status": refused.status,
        "detail": refused.detail,
    }
