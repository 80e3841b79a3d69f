"""Reply addresses and Message-IDs: what outgoing emails carry (outbound/content.py) and what
incoming mail is matched by (inbound/actions.py), in one place so the two always agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac


def _from_address() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1]


def reply_domain() -> str:
    return settings.EMAIL_REPLY_DOMAIN or _from_address().rpartition("@")[2] or "localhost"


# Whose reply an address collects: the customer's (on the emails they get) or staff's (on
# the emails telling the business about a customer's message). The side is part of what is
# signed, so a customer cannot turn their address into the staff one.
CUSTOMER_SIDE, STAFF_SIDE = "customer", "staff"
_SIDE_PREFIX = {CUSTOMER_SIDE: "", STAFF_SIDE: "s"}


@dataclass(frozen=True)
class ReplyAddress:
    thread_id: int
    side: str


def _reply_signature(thread_id: int, side: str) -> str:
    value = str(thread_id) if side == CUSTOMER_SIDE else f"{side}:{thread_id}"
    return salted_hmac("notifications.reply-address", value).hexdigest()[:16]


def reply_address(thread_id: int, side: str = CUSTOMER_SIDE) -> str:
    """A thread's reply-to address for one side: stable and reusable (every email of the
    thread carries the same one), and signed so that guessing another gets nowhere."""
    token = f"{_SIDE_PREFIX[side]}{thread_id}.{_reply_signature(thread_id, side)}"
    return f"reply+{token}@{reply_domain()}"


def parse_reply_address(address: str) -> ReplyAddress | None:
    """The thread and side a reply-to address names, or None if it is not one of ours.
    Inbound mail must still be checked against the thread's people: an address is not a
    credential."""
    local, _, domain = parseaddr(address)[1].partition("@")
    if domain.lower() != reply_domain().lower() or not local.lower().startswith("reply+"):
        return None
    thread_part, _, signature = local[len("reply+") :].partition(".")
    side = STAFF_SIDE if thread_part[:1] == "s" else CUSTOMER_SIDE
    thread_part = thread_part.removeprefix("s")
    if not (thread_part.isascii() and thread_part.isdigit()) or len(thread_part) > 18:
        return None
    if not constant_time_compare(signature.lower(), _reply_signature(int(thread_part), side)):
        return None
    return ReplyAddress(thread_id=int(thread_part), side=side)


# -- our emails' Message-IDs -------------------------------------------------------------------
#
# <delivery-<id>.<signature>@<reply domain>>, the signature an HMAC of the delivery id under
# SECRET_KEY. Anyone can write "delivery-119.000000000000@x" into a forged bounce's
# References (issue 18: that once failed every email still "sent"); only we can write an id
# whose signature checks, and only the people an email went to have seen one. So a bounce
# names a delivery only through an id that verifies (delivery_id_of).
#
# The id is a function of the delivery alone, so it can be named again later without storing
# it: the next email of a thread replies to (In-Reply-To) an id we really sent. A retry of the
# same delivery carries the same id, which is what a resend of one message should do.

_MESSAGE_ID_SALT = "notifications.message-id"
# 24 hex digits: 96 bits that a forger would have to guess, per delivery.
_MESSAGE_ID_SIGNATURE = 24
_OUR_MESSAGE_ID = re.compile(r"^<?delivery-(\d{1,18})\.([0-9a-f]{24})@[^<>\s@]+>?$", re.IGNORECASE)


def _message_id_signature(delivery_id: int, secret: str | None = None) -> str:
    digest = salted_hmac(_MESSAGE_ID_SALT, str(delivery_id), secret=secret, algorithm="sha256")
    return digest.hexdigest()[:_MESSAGE_ID_SIGNATURE]


def message_id(delivery_id: int) -> str:
    """The Message-ID of the email that delivery `delivery_id` heads (an email carrying
    several of a customer's messages is named after the lowest delivery id among them)."""
    return f"<delivery-{delivery_id}.{_message_id_signature(delivery_id)}@{reply_domain()}>"


def delivery_id_of(value: str) -> int | None:
    """The delivery an id names, if it is one of ours and its signature checks (under the
    current SECRET_KEY or one still listed in SECRET_KEY_FALLBACKS); None otherwise."""
    match = _OUR_MESSAGE_ID.match(value.strip())
    if match is None:
        return None
    delivery_id, given = int(match.group(1)), match.group(2).lower()
    for secret in [None, *settings.SECRET_KEY_FALLBACKS]:
        if constant_time_compare(given, _message_id_signature(delivery_id, secret)):
            return delivery_id
    return None
