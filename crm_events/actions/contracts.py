"""Contracts: sent, then signed or voided. Sending is carded once; signing and voiding
change the record only (the card that tells the thread of a contract is its "sent" one).

`transition_contract` is the only writer of `Contract.status`.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import (
    Transition,
    check_project,
    check_transition,
    conflict_error,
    contract_url,
    post_card,
)
from crm_events.models import Contract
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind
Status = Contract.Status

# Where a contract may go from each status (its own status again is a no-op, always allowed).
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.SENT},
    Status.SENT: {Status.SIGNED, Status.VOID},
    Status.SIGNED: {Status.VOID},
    Status.VOID: set(),
}


@transaction.atomic
def send_contract(
    *,
    customer: Customer,
    number: str,
    title: str,
    project: Project | None = None,
    external_id: str = "",
    at: dt.datetime | None = None,
) -> Transition:
    """Record contract `number` as sent and card it once; the same number with another
    customer or title is refused."""
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
        )
    elif contract.customer_id != customer.pk or contract.title != title:
        raise conflict_error("Contract", number)
    to = Status.SENT if contract.status == Status.DRAFT else contract.status
    return transition_contract(contract=contract, to=to, at=at)


@transaction.atomic
def transition_contract(
    *, contract: Contract, to: str, at: dt.datetime | None = None
) -> Transition:
    """Move a contract to status `to` as TRANSITIONS allows; sending stamps `sent_at` and
    cards it once. The only writer of a contract's status."""
    locked = (
        Contract.objects.select_for_update(of=("self",))
        .select_related("customer", "project")
        .get(pk=contract.pk)
    )
    before = locked.status
    if to != before:
        name = f"Contract #{locked.number}"
        check_transition(record=locked, to=to, table=TRANSITIONS, name=name)
        locked.status = to
        fields = ["status", "updated_at"]
        if locked.sent_at is None:
            locked.sent_at = at or timezone.now()
            fields.append("sent_at")
        locked.save(update_fields=fields)
    return Transition(record=locked, before=before, after=locked.status, card=_card(locked, at))


def _card(contract: Contract, at: dt.datetime | None) -> Entry | None:
    if contract.status == Status.DRAFT:
        return None
    return post_card(
        customer=contract.customer,
        card_kind=CardKind.CONTRACT,
        title=f"Contract sent — {contract.title}",
        link_url=contract_url(contract),
        project=contract.project,
        key=f"crm:contract:{contract.pk}:sent",
        at=at,
    )
