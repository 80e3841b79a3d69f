"""What a notification says, per channel. Pure functions of entries and people: no queries
beyond the related objects the caller loaded, no network.

Only message kinds (staff, automated, customer reply) and event cards are ever notified to
customers, so staff-only text (internal notes, call transcripts) cannot reach their SMS,
email or push. An internal note reaches only the staff members it mentions (`staff_email`,
`staff_push_payload`), at their own addresses and devices.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from messaging.models import Entry
from notifications import reply_addresses, unsubscribe
from notifications.outbound.transports import SMS_MAX_LENGTH
from notifications.reply_addresses import STAFF_SIDE, reply_address
from portal import entry_links
from portal.mentions import staff_name
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


def customer_entry_url(entry: Entry, *, via: str = "sms") -> str:
    """A notification link (portal/entry_links.py): it signs the customer in once and opens
    their thread at this entry. Each call makes a new one."""
    return absolute(_entry_link(entry, via=via))


def _entry_link(entry: Entry, *, via: str) -> str:
    return entry_links.link_path(
        customer_id=entry.thread.customer_id, entry_id=entry.pk, seq=entry.seq, via=via
    )


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
    link = customer_entry_url(entry)
    if entry.kind == Entry.Kind.EVENT_CARD:
        # The card's own link would meet a sign-in page once the session is gone; this one
        # signs in and opens the card, one tap from its document.
        return fit_sms(f"{entry.body}\n{link}", link)
    return fit_sms(_sms_text(entry), link)


def sms_for_business(entry: Entry, customer: Customer) -> str:
    return fit_sms(f"{customer.name}: {_sms_text(entry)}".strip(), staff_chat_url(entry))


# -- Push --------------------------------------------------------------------------------------


def push_payload(entry: Entry, business: Business) -> dict:
    """A short preview; the service worker shows it and opens `url` when tapped. Push
    services cap payloads at 4 KB, so only a preview ever goes."""
    return {
        "title": business.name,
        "body": preview(entry_text(entry), PUSH_PREVIEW_LENGTH),
        # A path, not a URL: the service worker opens only its own origin's.
        "url": _entry_link(entry, via="push"),
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


def _headers(*, delivery_id: int, earlier: Sequence[int], unsubscribe_url: str = "") -> dict:
    """Our signed Message-ID (reply_addresses.message_id); In-Reply-To and References naming
    earlier emails of the thread we really sent to this side (`earlier`: the deliveries that
    head them, the thread's first email first and the latest last), so mail clients file
    them as one conversation; none on the first. Every notification is written by the
    portal, not typed as an email: Auto-Submitted (RFC 3834) tells auto-responders (out of
    office) not to answer it."""
    headers = {
        "Message-ID": reply_addresses.message_id(delivery_id),
        "Auto-Submitted": "auto-generated",
    }
    ids = [reply_addresses.message_id(pk) for pk in dict.fromkeys(earlier)]
    if ids:
        headers["In-Reply-To"] = ids[-1]
        headers["References"] = " ".join(ids)
    if unsubscribe_url:
        # RFC 8058: mail clients show an "Unsubscribe" button that POSTs
        # "List-Unsubscribe=One-Click" to this https URL, without the person signing in.
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


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
    *,
    entries: list[Entry],
    customer: Customer,
    business: Business,
    delivery_id: int,
    earlier: Sequence[int] = (),
) -> EmailMultiAlternatives:
    """One email for one or more messages to the customer (those written within the email
    delay go together), each previewed, with a "View in Portal" button, and a one-click
    unsubscribe that turns their email notifications off."""
    thread_id = entries[0].thread_id
    with timezone.override(zoneinfo.ZoneInfo(customer.time_zone)):
        context = {
            "customer": customer,
            "business": business,
            "items": [_email_item(e) for e in entries],
            "portal_url": customer_entry_url(entries[-1], via="email"),
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
        headers=_headers(
            delivery_id=delivery_id,
            earlier=earlier,
            unsubscribe_url=absolute(unsubscribe.unsubscribe_path(customer.pk)),
        ),
    )
    message.attach_alternative(html, "text/html")
    return message


def business_email(
    *,
    entry: Entry,
    customer: Customer,
    business: Business,
    to: str,
    delivery_id: int,
    earlier: Sequence[int] = (),
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
        headers=_headers(delivery_id=delivery_id, earlier=earlier),
    )
    message.attach_alternative(html, "text/html")
    return message


# -- Staff members (the assignee; someone a note mentions) ------------------------------------


def _is_mention(entry: Entry) -> bool:
    return entry.kind == Entry.Kind.INTERNAL_NOTE


def staff_email(*, entry: Entry, customer: Customer, delivery) -> EmailMultiAlternatives:
    """To one staff member: a customer's message in a thread assigned to them (the business's
    email, to their own address), or an internal note that mentions them, with a link to
    the note. A mention is answered in the portal, never by replying: its email carries no
    reply address of the thread, so a reply cannot become a message to the customer."""
    business = customer.business
    if not _is_mention(entry):
        return business_email(
            entry=entry,
            customer=customer,
            business=business,
            to=delivery.recipient,
            delivery_id=delivery.pk,
        )
    author = staff_name(entry.author) or "Porchlight"
    with timezone.override(zoneinfo.ZoneInfo(business.time_zone)):
        context = {
            "customer": customer,
            "business": business,
            "entry": entry,
            "text": preview(entry.body, EMAIL_PREVIEW_LENGTH),
            "portal_url": staff_chat_url(entry),
            "preheader": preview(entry.body, 90),
            "mention_by": author,
        }
        text = render_to_string("notifications/email/business.txt", context)
        html = render_to_string("notifications/email/business.html", context)
    message = EmailMultiAlternatives(
        subject=f"{author} mentioned you: {customer.name}",
        body=text,
        from_email=formataddr(("Porchlight", _from_address())),
        to=[delivery.recipient],
        headers=_headers(delivery_id=delivery.pk, earlier=()),
    )
    message.attach_alternative(html, "text/html")
    return message


def staff_push_payload(entry: Entry, customer: Customer) -> dict:
    """A short preview for a staff member's device; tapping it opens the staff chat at the
    entry (a path of ours: the service worker opens only its own origin's)."""
    if _is_mention(entry):
        title = f"{staff_name(entry.author) or 'Porchlight'} mentioned you · {customer.name}"
    else:
        title = customer.name
    return {
        "title": title,
        "body": preview(entry_text(entry), PUSH_PREVIEW_LENGTH),
        "url": f"{reverse('staff_chat', args=[entry.thread_id])}?at={entry.seq}",
        "tag": f"staff-thread-{entry.thread_id}",
    }
