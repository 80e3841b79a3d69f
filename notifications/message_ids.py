"""The Message-IDs of the emails we send: unguessable and verifiable.

`<delivery-<id>.<signature>@<reply domain>>`, where the signature is an HMAC of the delivery
id under SECRET_KEY. Anyone can write `delivery-119.000000000000@x` into a forged bounce's
References (issue 18: that once failed every email still "sent"); only we can write an id
whose signature checks, and only the people an email went to have seen one. So a bounce
names a delivery only through an id that verifies (`delivery_id_of`).

The id is a function of the delivery alone, so it can be named again later without storing
it: the next email of a thread replies to (In-Reply-To) an id we really sent. A retry of the
same delivery carries the same id, which is what a resend of one message should do.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "notifications.message-id"
# 24 hex digits: 96 bits that a forger would have to guess, per delivery.
_SIGNATURE_LENGTH = 24
_OURS = re.compile(r"^<?delivery-(\d{1,18})\.([0-9a-f]{24})@[^<>\s@]+>?$", re.IGNORECASE)


def _signature(delivery_id: int, secret: str | None = None) -> str:
    digest = salted_hmac(_SALT, str(delivery_id), secret=secret, algorithm="sha256")
    return digest.hexdigest()[:_SIGNATURE_LENGTH]


def message_id(delivery_id: int, *, domain: str) -> str:
    """The Message-ID of the email that delivery `delivery_id` heads (an email carrying
    several of a customer's messages is named after the lowest delivery id among them)."""
    return f"<delivery-{delivery_id}.{_signature(delivery_id)}@{domain}>"


def delivery_id_of(value: str) -> int | None:
    """The delivery an id names, if it is one of ours and its signature checks (under the
    current SECRET_KEY or one still listed in SECRET_KEY_FALLBACKS); None otherwise."""
    match = _OURS.match(value.strip())
    if match is None:
        return None
    delivery_id, given = int(match.group(1)), match.group(2).lower()
    for secret in [None, *settings.SECRET_KEY_FALLBACKS]:
        if constant_time_compare(given, _signature(delivery_id, secret)):
            return delivery_id
    return None
