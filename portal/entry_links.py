"""Notification links: the link in a customer's SMS, email or push that signs that customer in
once and opens the entry it is about.

The token is signed (Django's signing, SECRET_KEY), names the customer, the entry and the
channel it went by, and carries a random nonce; nothing is stored when it is made, so the
content functions that write notifications stay free of writes. It is spent by storing its
nonce under a unique constraint (SpentNotificationLink): two taps racing sign in once.

- Lifetime: NOTIFICATION_LINK_MAX_AGE, one day. Long enough for "read it tonight or at
  breakfast"; short enough that a link found later in a mailbox, a forwarded email or a
  shared phone gets nothing. Late or spent, it opens the sign-in page with the address filled
  in and the entry as where to go next: one code away.
- What it grants: a "thread" session (portal/devices.py): that customer's thread (read,
  search, reply) for at most THREAD_SESSION_MAX_AGE, never "kept". Anything else (account
  details, devices, documents, settings) asks for a code first. So a forwarded email lets the
  person it was forwarded to read and answer the conversation they were shown a piece of, for
  a few hours, and nothing lasting: they cannot change where codes go or stay signed in.
- Never staff: a token names a customer, and spending it refuses a staff or inactive account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from portal.models import Customer, SpentNotificationLink

SALT = "porchlight.notification-link"
VIA = {"sms", "email", "push"}


class BadLink(Exception):
    """Not a link of ours (mistyped, cut short, or forged)."""


@dataclass(frozen=True)
class Link:
    customer_id: int
    entry_id: int
    seq: int
    via: str
    nonce: str

    @property
    def target(self) -> str:
        """Where the link lands: the customer's thread, at the entry."""
        return f"{reverse('messages')}?at={self.seq}"


def link_path(*, customer_id: int, entry_id: int, seq: int, via: str) -> str:
    """A new link (a fresh nonce each time: each notification's link is its own)."""
    payload = {"c": customer_id, "e": entry_id, "s": seq, "v": via, "n": secrets.token_hex(8)}
    token = signing.dumps(payload, salt=SALT, compress=True)
    return reverse("notification_link", args=[token])


def _link(payload) -> Link:
    try:
        link = Link(
            customer_id=int(payload["c"]),
            entry_id=int(payload["e"]),
            seq=int(payload["s"]),
            via=str(payload["v"]),
            nonce=str(payload["n"]),
        )
    except (KeyError, TypeError, ValueError):
        raise BadLink from None
    if link.via not in VIA:
        raise BadLink
    return link


def read(token: str) -> tuple[Link, bool]:
    """The link and whether it is still within its age; BadLink if it is not ours."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.NOTIFICATION_LINK_MAX_AGE)
        return _link(payload), True
    except signing.SignatureExpired:
        # The signature is good, only old: say where it would have gone.
        return _link(signing.loads(token, salt=SALT)), False
    except signing.BadSignature:
        raise BadLink from None


def spent(link: Link) -> bool:
    return SpentNotificationLink.objects.filter(nonce=link.nonce).exists()


def spend(link: Link) -> Customer | None:
    """Use the link once: its customer, if active, not staff, and the entry is theirs; None
    if any of that fails or it was used before."""
    customer = (
        Customer.objects.select_related("user")
        .filter(
            pk=link.customer_id,
            user__is_active=True,
            user__is_staff=False,
            thread__entries__pk=link.entry_id,
        )
        .first()
    )
    if customer is None:
        return None
    try:
        with transaction.atomic():
            SpentNotificationLink.objects.create(
                nonce=link.nonce, customer=customer, spent_at=timezone.now()
            )
    except IntegrityError:
        return None
    return customer


def prefill(link: Link) -> str:
    """The address the sign-in page offers when the link no longer works: the one the
    notification went to (a push: the phone, else the email)."""
    customer = Customer.objects.filter(pk=link.customer_id).only("email", "phone").first()
    if customer is None:
        return ""
    if link.via == "email":
        return customer.email or customer.phone
    return customer.phone or customer.email
