"""Estimates: sent with their lines, then approved or declined once, by staff or by the
customer in the portal; each status carded once.
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
    estimate_url,
    formatted_total,
    post_card,
    record_sent_document,
)
from crm_events.models import Estimate
from messaging import actions as thread_actions
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind


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
) -> Estimate:
    """Record estimate `number` as sent, and card it once (see `send_invoice`)."""
    return record_sent_document(
        model=Estimate,
        changed=lambda estimate: estimate_changed(estimate=estimate, at=at, notify=notify),
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
            body=f"I {verb} Estimate #{locked.number} ({formatted_total(locked)}).",
            channel=Entry.Channel.PORTAL,
            project=locked.project,
            idempotency_key=f"crm:estimate:{locked.pk}:{decision}:message",
            at=at,
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
    sent = post_card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=f"Estimate #{estimate.number} sent — {formatted_total(estimate)}",
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:sent",
        at=at,
        notify=notify or estimate.status != Estimate.Status.SENT,
    )
    if estimate.status == Estimate.Status.SENT:
        return sent
    word = "approved" if estimate.status == Estimate.Status.APPROVED else "declined"
    return post_card(
        customer=estimate.customer,
        card_kind=CardKind.ESTIMATE,
        title=f"Estimate #{estimate.number} {word}",
        link_url=estimate_url(estimate),
        project=estimate.project,
        key=f"crm:estimate:{estimate.pk}:{estimate.status}",
        at=at,
        notify=notify,
    )
