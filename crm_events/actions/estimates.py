"""Estimates: sent with their lines (some optional) and terms, revised as new versions, then
approved (signed) or declined once per version, by staff or by the customer in the portal;
each status of each version carded once.

`transition_estimate` is the only writer of `Estimate.status`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import (
    LineData,
    Transition,
    check_currency,
    check_lines,
    check_project,
    check_transition,
    conflict_error,
    estimate_url,
    format_amount,
    formatted_total,
    post_card,
)
from crm_events.models import (
    Estimate,
    EstimateDecision,
    EstimateLine,
    EstimateVersion,
    document_number,
    money,
)
from crm_events.outbound import events as outbound
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind
Status = Estimate.Status

# Where an estimate may go from each status (its own status again is a no-op, always allowed).
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.SENT},
    Status.SENT: {Status.APPROVED, Status.DECLINED},
    Status.APPROVED: set(),
    Status.DECLINED: set(),
}


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
    terms: str = "",
    external_id: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Transition:
    """Record estimate `number` as sent, and card it once. The same content again changes
    nothing. Other content for a sent (or decided) estimate is its next version: the earlier
    version's content stays in EstimateVersion, with its decision, and the customer decides
    again. A draft (made in the admin) sent with other content is refused, as invoices are."""
    check_project(customer=customer, project=project)
    number = number.strip()
    document_number(number)  # it becomes an address and a file name
    currency = check_currency(currency)
    base = check_lines(lines, total)
    terms = (terms or "").strip()
    estimate = Estimate.objects.select_for_update().filter(number=number).first()
    if estimate is None:
        estimate = Estimate.objects.create(
            customer=customer,
            project=project,
            number=number,
            currency=currency,
            total=base,
            valid_until=valid_until,
            terms=terms,
            external_id=external_id,
        )
        _write_lines(estimate, lines)
        return transition_estimate(estimate=estimate, to=Status.SENT, at=at, notify=notify)
    if estimate.customer_id != customer.pk:
        raise conflict_error("Estimate", number)
    wanted = {
        "currency": currency,
        "total": base,
        "valid_until": valid_until,
        "terms": terms,
        "lines": [
            _line_key(ln.description.strip(), ln.quantity, ln.unit_price, ln.optional)
            for ln in lines
        ],
    }
    if wanted == _content_key(estimate):
        to = Status.SENT if estimate.status == Status.DRAFT else estimate.status
        return transition_estimate(estimate=estimate, to=to, at=at, notify=notify)
    if estimate.status == Status.DRAFT:
        raise conflict_error("Estimate", number)
    # A new version: the one shown (and perhaps decided) until now is kept as it was sent.
    _snapshot(estimate, at=at)
    estimate.version += 1
    estimate.currency, estimate.total = currency, base
    estimate.valid_until, estimate.terms = valid_until, terms
    estimate.save(
        update_fields=["version", "currency", "total", "valid_until", "terms", "updated_at"]
    )
    estimate.lines.all().delete()
    _write_lines(estimate, lines)
    return transition_estimate(
        estimate=estimate, to=Status.SENT, at=at, notify=notify, revised=True
    )


def _line_key(description: str, quantity: Decimal, unit_price: Decimal, optional: bool) -> tuple:
    return (description, Decimal(quantity).quantize(Decimal("0.001")), money(unit_price), optional)


def _content_key(estimate: Estimate) -> dict:
    return {
        "currency": estimate.currency,
        "total": estimate.total,
        "valid_until": estimate.valid_until,
        "terms": estimate.terms,
        "lines": [
            _line_key(ln.description, ln.quantity, ln.unit_price, ln.optional)
            for ln in estimate.lines.all()
        ],
    }


def _write_lines(estimate: Estimate, lines: Sequence[LineData]) -> None:
    EstimateLine.objects.bulk_create(
        EstimateLine(
            estimate=estimate,
            position=i,
            description=ln.description.strip(),
            quantity=ln.quantity,
            unit_price=money(ln.unit_price),
            optional=ln.optional,
        )
        for i, ln in enumerate(lines)
    )


def _snapshot(estimate: Estimate, *, at: dt.datetime | None) -> None:
    """Keep the content of the estimate's current version (once per version)."""
    EstimateVersion.objects.get_or_create(
        estimate=estimate,
        version=estimate.version,
        defaults={
            "content": estimate_content(estimate),
            "sent_at": estimate.issued_at or at or timezone.now(),
        },
    )


# -- what the customer sees, and signs ---------------------------------------------------------


def estimate_content(estimate: Estimate) -> dict[str, Any]:
    """The estimate's current version as JSON: number, version, currency, lines (with
    whether each is optional), terms, validity and the total without options."""
    return {
        "number": estimate.number,
        "version": estimate.version,
        "currency": estimate.currency,
        "lines": [
            {
                "position": ln.position,
                "description": ln.description,
                "quantity": f"{Decimal(ln.quantity).quantize(Decimal('0.001'))}",
                "unit_price": f"{money(ln.unit_price)}",
                "amount": f"{ln.amount}",
                "optional": ln.optional,
            }
            for ln in estimate.lines.all()
        ],
        "terms": estimate.terms,
        "valid_until": estimate.valid_until.isoformat() if estimate.valid_until else None,
        "total": f"{money(estimate.total)}",
    }


@dataclass(frozen=True)
class SignedDocument:
    """The document the customer decides on, with the options they chose: its canonical
    JSON (keys sorted, no spaces, UTF-8) and that JSON's SHA-256."""

    content: dict[str, Any]
    chosen: list[int]
    total: Decimal
    canonical: str
    sha256: str


def signed_document(estimate: Estimate, chosen: Sequence[int]) -> SignedDocument:
    """The estimate's current version with optional lines `chosen` (their positions).
    Refuses a position that is not one of its optional lines."""
    optional = {ln.position: ln.amount for ln in estimate.lines.all() if ln.optional}
    picked = sorted(set(chosen))
    unknown = [p for p in picked if p not in optional]
    if unknown:
        raise ValidationError("That option is not one of this estimate's.", code="bad_option")
    options = money(sum((optional[p] for p in picked), Decimal(0)))
    total = money(estimate.total + options)
    content = estimate_content(estimate)
    document = {
        **content,
        "chosen_options": picked,
        "totals": {"base": content["total"], "options": f"{options}", "total": f"{total}"},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return SignedDocument(content, picked, total, canonical, digest)


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
    version: int | None = None,
    signer_name: str = "",
    agreed: bool = False,
    chosen_options: Sequence[int] = (),
    ip_address: str | None = None,
    user_agent: str = "",
    reason: str = "",
) -> Transition:
    """The estimate is approved or declined, once per version. By staff (the admin): a
    status change. By the customer in the portal (`by_customer`): on the `version` their page
    showed (a newer one is refused: they must see it first), not expired, an approval signed
    with their typed name and `agreed` to the terms, with the optional lines they chose. The
    decision is kept (EstimateDecision: who, when, from where, what document, its hash) and
    carded in the thread as theirs, unread for staff; a decline's reason goes to staff as a
    note. The CRM hears of it (`estimate.approved`/`declined`)."""
    locked = (
        Estimate.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=estimate.pk)
    )
    decision = Status.APPROVED if approve else Status.DECLINED
    if not by_customer:
        return transition_estimate(estimate=locked, to=decision, at=at, decided_by="staff")
    name = f"Estimate #{locked.number}"
    if locked.status != Status.SENT:
        check_transition(record=locked, to=decision, table=TRANSITIONS, name=name)
    if version is not None and version != locked.version:
        raise ValidationError(
            "%(n)s has changed since you opened it: this is version %(v)s. "
            "Please read it again before you decide.",
            code="stale_version",
            params={"n": name, "v": locked.version},
        )
    expired = locked.valid_until is not None and locked.valid_until < timezone.localdate()
    if expired:
        raise ValidationError(
            "%(n)s expired on %(d)s; ask us for a new one.",
            code="expired",
            params={"n": name, "d": f"{locked.valid_until:%b %-d, %Y}"},
        )
    signer_name = " ".join((signer_name or "").split())
    reason = (reason or "").strip()
    if approve:
        if not signer_name:
            raise ValidationError("Type your full name to sign.", code="name_required")
        if not agreed:
            raise ValidationError("Tick “I agree” to approve.", code="not_agreed")
    else:
        signer_name = signer_name or locked.customer.name
        chosen_options = ()
    if len(signer_name) > 200 or len(reason) > 2000 or len(user_agent or "") > 2000:
        raise ValidationError("That is too long.", code="too_long")
    document = signed_document(locked, chosen_options)
    record = EstimateDecision.objects.create(
        estimate=locked,
        version=locked.version,
        decision=decision,
        signer_name=signer_name,
        decided_at=at or timezone.now(),
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:500],
        chosen_options=document.chosen,
        total=document.total,
        document=document.canonical,
        document_sha256=document.sha256,
        reason=reason,
    )
    change = transition_estimate(
        estimate=locked, to=decision, at=record.decided_at, decided_by="customer", decision=record
    )
    if reason:
        thread_actions.add_internal_note(
            thread=thread_actions.ensure_thread(customer=locked.customer),
            author=None,
            body=f"{signer_name}'s reason for declining {name}: {reason}",
            project=locked.project,
            idempotency_key=f"crm:estimate:{locked.pk}:v{locked.version}:declined:reason",
        )
    return change


def latest_decision(estimate: Estimate) -> EstimateDecision | None:
    """The customer's decision on the estimate's current version, if they made one."""
    return EstimateDecision.objects.filter(estimate=estimate, version=estimate.version).first()


@transaction.atomic
def transition_estimate(
    *,
    estimate: Estimate,
    to: str,
    at: dt.datetime | None = None,
    notify: bool = True,
    decided_by: str = "staff",
    decision: EstimateDecision | None = None,
    revised: bool = False,
) -> Transition:
    """Move an estimate to status `to` as TRANSITIONS allows, stamp when it was issued or
    decided, and card it once per version. The only writer of an estimate's status. A
    decision is told to the CRM (`estimate.approved`/`declined`) unless the CRM made it
    (`decided_by="crm"`); else it is "customer" (with their `decision` record) or "staff".
    `revised`: `send_estimate` made a new version, which is sent again whatever it was."""
    locked = (
        Estimate.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=estimate.pk)
    )
    before = locked.status
    if to != before:
        name = f"Estimate #{locked.number}"
        if not (revised and to == Status.SENT):
            check_transition(record=locked, to=to, table=TRANSITIONS, name=name)
        if to == Status.SENT and not locked.lines.exists():
            raise ValidationError("%(n)s has no lines.", code="no_lines", params={"n": name})
        now = at or timezone.now()
        locked.status = to
        fields = ["status", "updated_at"]
        if locked.issued_at is None:
            locked.issued_at = now
            fields.append("issued_at")
        if to in (Status.APPROVED, Status.DECLINED):
            locked.decided_at = now
            fields.append("decided_at")
        elif locked.decided_at is not None:
            locked.decided_at = None  # a new version, not decided yet
            fields.append("decided_at")
        locked.save(update_fields=fields)
        if to in (Status.APPROVED, Status.DECLINED):
            outbound.estimate_decided(estimate=locked, decided_by=decided_by, decision=decision)
    if locked.status == Status.SENT:
        _snapshot(locked, at=at)
    card = _card(locked, at, notify=notify, decision=decision)
    return Transition(record=locked, before=before, after=locked.status, card=card)


def _card(
    estimate: Estimate,
    at: dt.datetime | None,
    *,
    notify: bool,
    decision: EstimateDecision | None = None,
) -> Entry | None:
    """The card of the estimate's current status, posted once per estimate, version and
    status. A customer's decision is their card (`from_customer`): staff have it unread and
    the business is told of it; it names who signed and, approved, the total they chose."""
    if estimate.status == Status.DRAFT:
        return None
    number = f"Estimate #{estimate.number}"
    if estimate.status == Status.SENT:
        word = "sent" if estimate.version == 1 else "revised"
        title = f"{number} {word} — {formatted_total(estimate)}"
    else:
        word = "approved" if estimate.status == Status.APPROVED else "declined"
        title = f"{number} {word}"
        if decision is None:
            decision = latest_decision(estimate)
        if decision is not None:
            title += f" by {decision.signer_name}"
            if decision.decision == EstimateDecision.Decision.APPROVED:
                title += f" — {format_amount(estimate, decision.total)}"
    # Version 1 keeps the key cards had before estimates had versions.
    version = "" if estimate.version == 1 else f"v{estimate.version}:"
    return post_card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=title,
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:{version}{estimate.status}",
        at=at,
        notify=notify,
        from_customer=decision is not None,
    )
