"""Writes of the customer's own details (/account/): their name, and a new phone or email once
a code sent to it has come back.

Each change is one transaction: the Customer row, a card in the thread that staff see ("Sarah
Mitchell changed their phone ..."), and the call point of the CRM's `customer.updated` event.
Notifications read the Customer row when they are planned, so the next message goes to the
new details at once."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from crm_events.outbound.events import record_event
from messaging import actions as thread_actions
from messaging.models import Entry
from portal import codes
from portal.models import Customer
from portal.phones import format_phone

logger = logging.getLogger(__name__)

PHONE, EMAIL = codes.PHONE, codes.EMAIL
LABELS = {"name": "name", PHONE: "mobile number", EMAIL: "email address"}


def customer_updated(
    *, customer: Customer, changed: dict[str, tuple[str, str]], card: Entry
) -> None:
    """Tell the CRM (`customer.updated`, crm_events/outbound/) what changed: {field: (old,
    new)}. Called inside the transaction that changed the customer, so the outbox row commits
    or rolls back with the change; keyed by the change's card, so it is recorded once."""
    logger.info("customer %s updated: %s", customer.pk, ", ".join(sorted(changed)))
    record_event(
        type="customer.updated",
        customer=customer,
        key=f"customer.updated:{card.pk}",
        data={
            "changed": {field: {"from": old, "to": new} for field, (old, new) in changed.items()}
        },
        occurred_at=card.created_at,
    )


def _shown(field: str, value: str) -> str:
    if not value:
        return "none"
    return format_phone(value) if field == PHONE else value


def _record(*, customer: Customer, field: str, old: str, new: str) -> Entry:
    """The card staff see in the thread; the customer sees it too (it is their own change)."""
    title = (
        f"{customer.name} changed their {LABELS[field]} from {_shown(field, old)} "
        f"to {_shown(field, new)}"
        if field != "name"
        else f"{old} changed their name to {new}"
    )
    return thread_actions.post_event_card(
        thread=thread_actions.ensure_thread(customer=customer),
        card_kind=Entry.CardKind.ACCOUNT,
        title=title,
        link_url=f"{reverse('account')}?customer={customer.pk}",
        notify=False,
    )


def change_name(*, customer: Customer, name: str) -> bool:
    """The customer's name as staff and notifications show it. False if it is unchanged."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Enter your name.", code="required")
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        old = locked.name
        if old == name:
            return False
        locked.name = name
        locked.save(update_fields=["name"])
        card = _record(customer=locked, field="name", old=old, new=name)
        customer_updated(customer=locked, changed={"name": (old, name)}, card=card)
    customer.name = name
    return True


def request_contact_change(*, customer: Customer, address: str) -> None:
    """Send a code to the new phone or email. Whether another account has it is told only
    to whoever proves they hold it (confirm_contact_change), so this says nothing."""
    codes.request_code(address=address, purpose=codes.Purpose.VERIFY, customer_id=customer.pk)


def confirm_contact_change(*, customer: Customer, address: str, code: str) -> bool:
    """Replace the customer's phone or email with `address` if `code` is the one sent to it.
    False for a wrong code; ValidationError if another account holds the address."""
    field = codes.kind_of(address)
    with transaction.atomic():
        if (
            codes.check_code(
                address=address, code=code, purpose=codes.Purpose.VERIFY, customer=customer
            )
            is None
        ):
            return False
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        old = getattr(locked, field)
        if old.lower() == address.lower():
            return True
        lookup = {"email__iexact" if field == EMAIL else "phone": address}
        taken = ValidationError(
            f"That {LABELS[field]} is on another account here. If it's yours, ask "
            f"{locked.business.name} to move it.",
            code="taken",
        )
        if Customer.objects.filter(**lookup).exclude(pk=locked.pk).exists():
            raise taken
        setattr(locked, field, address)
        try:
            with transaction.atomic():
                locked.save(update_fields=[field])
        except IntegrityError:  # taken between the check and the write
            raise taken from None
        card = _record(customer=locked, field=field, old=old, new=address)
        customer_updated(customer=locked, changed={field: (old, address)}, card=card)
    setattr(customer, field, address)
    return True
