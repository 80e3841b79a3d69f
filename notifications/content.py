"""What a notification says, per channel. Pure functions of entries and people: no queries
beyond the related objects the caller loaded, no network.

Only message kinds (staff, automated, customer reply) and event cards are ever notified, so
staff-only text (internal notes, call transcripts) cannot reach an SMS, email or push.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from messaging.models import Entry
from notifications.transports import SMS_MAX_LENGTH
from portal.models import Business, Customer

PUSH_PREVIEW_LENGTH = 140
EMAIL_PREVIEW_LENGTH = 600
_SPACE = re.compile(r"\s+")


def absolute(path_or_url: str) -> str:
    if path_or_url.startswith(("http://", "https://")):
        return path_or_url
    return f"{settings.SITE_URL}{path_or_url}"


def preview(text: str, length: int) -> str:
    """One line, at most `length` characters, cut at a word with an ellipsis."""
    text = _SPACE.sub(" ", text or "").strip()
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    if " " in cut[length // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def customer_entry_url(entry: Entry) -> str:
    """The customer's Messages page opened at this entry."""
    return absolute(f"{reverse('messages')}?at={entry.seq}")


def staff_chat_url(entry: Entry) -> str:
    return absolute(f"{reverse('staff_chat', args=[entry.thread_id])}?at={entry.seq}")


def entry_text(entry: Entry, *, with_files: bool = True) -> str:
    """The text a notification carries for an entry: the message itself (saying what came
    with it), or a card's title and the document it links to."""
    if entry.kind == Entry.Kind.EVENT_CARD and entry.link_url:
        return f"{entry.body}\n{absolute(entry.link_url)}"
    files = shared_files(entry) if with_files else []
    note = files_note(files)
    return f"{entry.body}\n{note}".strip() if note else entry.body


def shared_files(entry: Entry) -> list:
    """The entry's files both sides see (loaded once per entry)."""
    if not entry.attachment_count:
        return []
    return [a for a in entry.attachments.all() if not a.staff_only]


def files_note(files) -> str:
    """ "[2 photos]" or "[1 photo, 1 file]" for a notification that cannot carry them."""
    if not files:
        return ""
    photos = sum(1 for f in files if f.content_type.startswith("image/"))
    others = len(files) - photos
    parts = [
        f"{n} {word}{'s' if n != 1 else ''}"
        for n, word in ((photos, "photo"), (others, "file"))
        if n
    ]
    return f"[{', '.join(parts)}]"


# Twilio sends these as MMS everywhere; others go as a note and are opened in the portal.
MMS_TYPES = frozenset({"image/jpeg", "image/png", "image/gif"})


def mms_files(entry: Entry) -> list:
    return [f for f in shared_files(entry) if f.content_type in MMS_TYPES][:10]


# -- SMS ---------------------------------------------------------------------------------------


def _sms_length(text: str) -> int:
    # Twilio counts UTF-16 code units: an emoji takes two of the 1,600.
    return len(text.encode("utf-16-le")) // 2


def fit_sms(text: str, link: str) -> str:
    """`text` if Twilio takes it whole, else as much as fits followed by a link to the rest:
    an over-long body must not turn into a failed delivery."""
    if _sms_length(text) <= SMS_MAX_LENGTH:
        return text
    suffix = f"… Read the rest: {link}"
    room = SMS_MAX_LENGTH - _sms_length(suffix)
    cut = text[:room]
    while _sms_length(cut) > room:  # only when the text has characters outside the BMP
        cut = cut[:-1]
    return cut.rstrip() + suffix


def _sms_text(entry: Entry) -> str:
    """The text of an SMS that carries the entry's photos as MMS: a note for what it cannot
    carry (other files), not for the photos themselves."""
    if entry.kind == Entry.Kind.EVENT_CARD:
        return entry_text(entry)
    carried = set(mms_files(entry))
    note = files_note([f for f in shared_files(entry) if f not in carried])
    return f"{entry.body}\n{note}".strip() if note else entry.body


def sms_for_customer(entry: Entry) -> str:
    return fit_sms(_sms_text(entry), customer_entry_url(entry))


def sms_for_business(entry: Entry, customer: Customer) -> str:
    return fit_sms(f"{customer.name}: {_sms_text(entry)}".strip(), staff_chat_url(entry))


# -- Push --------------------------------------------------------------------------------------


def push_payload(entry: Entry, business: Business) -> dict:
    """A short preview; the service worker shows it and opens `url` when tapped. Push
    services cap payloads at 4 KB, so only a preview ever goes."""
    return {
        "title": business.name,
        "body": preview(entry_text(entry), PUSH_PREVIEW_LENGTH),
        "url": f"{reverse('messages')}?at={entry.seq}",
        "tag": f"thread-{entry.thread_id}",
    }


def push_test_payload(business: Business) -> dict:
    return {
        "title": business.name,
        "body": "Test notification: push works on this device.",
        "url": reverse("notification_settings"),
        "tag": "test",
    }


# -- Email -------------------------------------------------------------------------------------


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


def _headers(*, thread_id: int, audience: str, delivery_id: int) -> dict:
    root = thread_message_id(thread_id, audience)
    return {"Message-ID": new_message_id(delivery_id), "In-Reply-To": root, "References": root}


def _email_item(entry: Entry) -> dict:
    """A card's title with its document as a link of its own (the HTML part makes it a
    button, not a raw URL under the title); a message's text with a note of its files."""
    if entry.kind == Entry.Kind.EVENT_CARD and entry.link_url:
        return {
            "entry": entry,
            "text": preview(entry.body, EMAIL_PREVIEW_LENGTH),
            "link": absolute(entry.link_url),
        }
    return {"entry": entry, "text": preview(entry_text(entry), EMAIL_PREVIEW_LENGTH), "link": ""}


def customer_email(
    *, entries: list[Entry], customer: Customer, business: Business, delivery_id: int
) -> EmailMultiAlternatives:
    """One email for one or more messages to the customer (those written within the email
    delay go together), each previewed, with a "View in Portal" button."""
    thread_id = entries[0].thread_id
    with timezone.override(zoneinfo.ZoneInfo(customer.time_zone)):
        context = {
            "customer": customer,
            "business": business,
            "items": [_email_item(e) for e in entries],
            "portal_url": absolute(reverse("messages")),
            "settings_url": absolute(reverse("notification_settings")),
            "preheader": preview(entries[-1].body, 90),
        }
        text = render_to_string("notifications/email/customer.txt", context)
        html = render_to_string("notifications/email/customer.html", context)
    message = EmailMultiAlternatives(
        # The same subject for the whole thread: Gmail threads only when subjects match.
        subject=f"Your conversation with {business.name}",
        body=text,
        from_email=formataddr((business.name, _from_address())),
        to=[formataddr((customer.name, customer.email))],
        reply_to=[reply_address(thread_id)],
        headers=_headers(thread_id=thread_id, audience="customer", delivery_id=delivery_id),
    )
    message.attach_alternative(html, "text/html")
    return message


def business_email(
    *, entry: Entry, customer: Customer, business: Business, to: str, delivery_id: int
) -> EmailMultiAlternatives:
    """A customer's reply, to the business, with a button straight to the staff chat."""
    with timezone.override(zoneinfo.ZoneInfo(business.time_zone)):
        context = {
            "customer": customer,
            "business": business,
            "entry": entry,
            "text": preview(entry.body, EMAIL_PREVIEW_LENGTH),
            "portal_url": staff_chat_url(entry),
            "preheader": preview(entry.body, 90),
        }
        text = render_to_string("notifications/email/business.txt", context)
        html = render_to_string("notifications/email/business.html", context)
    message = EmailMultiAlternatives(
        subject=f"Conversation with {customer.name}",
        body=text,
        from_email=formataddr((f"{customer.name} via Porchlight", _from_address())),
        to=[to],
        # Staff's own reply address: answering this email writes to the customer.
        reply_to=[reply_address(entry.thread_id, STAFF_SIDE)],
        headers=_headers(thread_id=entry.thread_id, audience="business", delivery_id=delivery_id),
    )
    message.attach_alternative(html, "text/html")
    return message
