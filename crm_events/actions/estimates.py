"""Estimates: sent with their lines, then approved or declined once, by staff or by the
customer in the portal; each status carded once.

`transition_estimate` is the only writer of `Estimate.status`.
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
    estimate_url,
    formatted_total,
    post_card,
    record_sent_document,
)
from crm_events.models import Estimate
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
    external_id: str = "",
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Transition:
    """Record estimate `number` as sent, and card it once (see `send_invoice`)."""
    check_project(customer=customer, project=project)
    return record_sent_document(
        model=Estimate,
        transition=lambda estimate, to: transition_estimate(
            estimate=estimate, to=to, at=at, notify=notify
        ),
        customer=customer,
        project=project,
        number=number,
        lines=lines,
        currency=currency,
        total=total,
        dates={"valid_until": valid_until},
        external_id=external_id,
    )


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
) -> Transition:
    """The estimate is approved or declined, once. From the portal (`by_customer`) an expired
    estimate is refused, and the decision is also a message to the business, so they hear of
    it on their usual channel and see it unread in the staff list; the card itself does not
    notify the customer, who just made the decision."""
    locked = Estimate.objects.select_for_update().get(pk=estimate.pk)
    decision = Status.APPROVED if approve else Status.DECLINED
    expired = locked.valid_until is not None and locked.valid_until < timezone.localdate()
    if by_customer and locked.status == Status.SENT and expired:
        raise ValidationError(
            "Estimate #%(n)s expired on %(d)s; ask us for a new one.",
            code="expired",
            params={"n": locked.number, "d": f"{locked.valid_until:%b %-d, %Y}"},
        )
    change = transition_estimate(
        estimate=locked,
        to=decision,
        at=at,
        notify=not by_customer,
        decided_by="customer" if by_customer else "staff",
    )
    if by_customer and change.changed:
        decided = change.record
        verb = "approve" if approve else "decline"
        thread_actions.post_customer_reply(
            customer=decided.customer,
            body=f"I {verb} Estimate #{decided.number} ({formatted_total(decided)}).",
            channel=Entry.Channel.PORTAL,
            project=decided.project,
            idempotency_key=f"crm:estimate:{decided.pk}:{decision}:message",
            at=at,
        )
    return change


@transaction.atomic
def transition_estimate(
    *,
    estimate: Estimate,
    to: str,
    at: dt.datetime | None = None,
    notify: bool = True,
    decided_by: str = "staff",
) -> Transition:
    """Move an estimate to status `to` as TRANSITIONS allows, stamp when it was issued or
    decided, and card it once. The only writer of an estimate's status. A decision is told
    to the CRM (`estimate.approved`/`declined`) unless the CRM made it (`decided_by="crm"`);
    else it is "customer" or "staff"."""
    locked = (
        Estimate.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=estimate.pk)
    )
    before = locked.status
    if to != before:
        name = f"Estimate #{locked.number}"
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
        locked.save(update_fields=fields)
        if to in (Status.APPROVED, Status.DECLINED):
            outbound.estimate_decided(estimate=locked, decided_by=decided_by)
    card = _card(locked, at, notify=notify)
    return Transition(record=locked, before=before, after=locked.status, card=card)


def _card(estimate: Estimate, at: dt.datetime | None, *, notify: bool) -> Entry | None:
    """The card of the estimate's current status, posted once per estimate and status."""
    if estimate.status == Status.DRAFT:
        return None
    if estimate.status == Status.SENT:
        title = f"Estimate #{estimate.number} sent — {formatted_total(estimate)}"
    else:
        word = "approved" if estimate.status == Status.APPROVED else "declined"
        title = f"Estimate #{estimate.number} {word}"
    return post_card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=title,
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:{estimate.status}",
        at=at,
        notify=notify,
    )
