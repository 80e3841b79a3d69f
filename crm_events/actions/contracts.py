"""Contracts: sent, and carded once."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.actions.common import check_project, conflict_error, contract_url, post_card
from crm_events.models import Contract
from messaging.models import Entry
from portal.models import Customer, Project

CardKind = Entry.CardKind


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
        raise conflict_error("Contract", number)
    contract_changed(contract=contract, at=at)
    return contract


@transaction.atomic
def contract_changed(*, contract: Contract, at: dt.datetime | None = None) -> Entry | None:
    if contract.status == Contract.Status.DRAFT:
        return None
    if contract.sent_at is None:
        contract.sent_at = at or timezone.now()
        Contract.objects.filter(pk=contract.pk).update(sent_at=contract.sent_at)
    return post_card(
        customer=contract.customer,
        card_kind=CardKind.CONTRACT,
        title=f"Contract sent — {contract.title}",
        link_url=contract_url(contract),
        project=contract.project,
        key=f"crm:contract:{contract.pk}:sent",
        at=at,
    )
