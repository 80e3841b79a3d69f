"""Reply addresses and Message-IDs: what outgoing emails carry (outbound/content.py) and what
incoming mail is matched by (inbound/actions.py), in one place so the two always agree."""

from __future__ import annotations

import re
import uuid
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


def thread_message_id(thread_id: int, audience: str) -> str:
    """The Message-ID every notification email of a thread replies to, so mail clients file
    them as one conversation (per recipient side)."""
    return f"<thread-{thread_id}.{audience}@{reply_domain()}>"


def new_message_id(delivery_id: int) -> str:
    return f"<delivery-{delivery_id}.{uuid.uuid4().hex[:12]}@{reply_domain()}>"


# What new_message_id makes: a bounce quotes one, naming the delivery it answers.
OUR_MESSAGE_ID = re.compile(r"^<delivery-(\d{1,18})\.[0-9a-f]+@", re.IGNORECASE)
