"""The only code that writes a thread.

Every entry (portal reply, staff message, automated message, event card, call marker,
internal note) is appended here, and read marks are set here. Views, webhooks, tasks, the
admin and the CRM ingest call these functions; nothing else creates an `Entry`.

Each append runs in one transaction: one UPDATE … RETURNING locks the thread's row, takes
the next sequence number and bumps the thread's counters; then the insert. Side effects
(live broadcasts, notification tasks) are registered with `transaction.on_commit` from here
and nowhere else, so a rolled-back append leaves no trace outside the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from messaging import extensions, keywords, live
from messaging.attachments import NewAttachment
from messaging.models import (
    CUSTOMER_KINDS,
    INBOUND_KINDS,
    MESSAGE_KINDS,
    Attachment,
    Entry,
    ReadMark,
    Side,
    Thread,
)
from portal.models import Customer, Project

Kind = Entry.Kind
Channel = Entry.Channel


# What draws nothing on its own: format characters (zero-width spaces and joiners, the BOM,
# direction marks), controls, separators, combining marks with nothing to combine with, and
# the few letters that render blank (Hangul fillers, the Braille blank).
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _shows_something(text: str) -> bool:
    return any(
        unicodedata.category(c) not in _INVISIBLE_CATEGORIES and c not in _BLANK_LETTERS
        for c in text
    )


def clean_body(body: str, *, may_be_empty: bool = False) -> str:
    """Trim and check a message body; the one rule for every channel. A message that carries
    photos `may_be_empty` (a picture texted with no words). Line ends are "\n" whatever the
    channel sent (browsers submit textareas with "\r\n", and so does email); NUL, which no
    database column takes, is dropped."""
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not _shows_something(body):
        if may_be_empty and not body:
            return ""
        raise ValidationError("Write a message before sending.", code="empty")
    limit = settings.MESSAGE_MAX_LENGTH
    if len(body) > limit:
        raise ValidationError(
            "Messages can be at most %(limit)s characters (this one has %(length)s).",
            code="too_long",
            params={"limit": f"{limit:,}", "length": f"{len(body):,}"},
        )
    return body


def _shown(attachments: Sequence[NewAttachment]) -> bool:
    """Whether the attachments show something in the thread (a file kept for staff only
    does not make an empty message worth sending)."""
    return any(not a.staff_only for a in attachments)


def ensure_thread(*, customer: Customer) -> Thread:
    """The customer's thread, created on first use."""
    thread, _ = Thread.objects.get_or_create(customer=customer)
    thread.customer = customer  # the caller's copy, with what it already loaded
    return thread


@dataclass(frozen=True)
class _NewEntry:
    kind: str
    channel: str
    body: str = ""
    author: AbstractBaseUser | None = None
    project: Project | None = None
    urgent: bool = False
    card_kind: str = ""
    link_url: str = ""
    action_label: str = ""
    action_url: str = ""
    call_started_at: dt.datetime | None = None
    call_duration_seconds: int | None = None
    transcript: str = ""
    attachments: tuple[NewAttachment, ...] = ()


class _Replayed(Exception):  # noqa: N818 - not an error: the key's entry exists
    def __init__(self, entry: Entry):
        self.entry = entry


def _append(
    *,
    thread: Thread,
    new: _NewEntry,
    idempotency_key: str | None,
    at: dt.datetime | None,
    notify: bool = True,
) -> tuple[Entry, bool]:
    """Append `new` to the thread; returns the entry and whether it was created now (False
    when the idempotency key had already been used: the existing entry comes back)."""
    try:
        entry = _append_new(
            thread=thread, new=new, idempotency_key=idempotency_key, at=at, notify=notify
        )
    except _Replayed as replayed:
        # The key was used already (a retried request, a webhook sent again): the append
        # rolled back, its sequence number with it, and the existing entry is the answer.
        return replayed.entry, False
    return entry, True


@transaction.atomic
def _append_new(
    *,
    thread: Thread,
    new: _NewEntry,
    idempotency_key: str | None,
    at: dt.datetime | None,
    notify: bool,
) -> Entry:
    created_at = at or timezone.now()
    # One statement locks the thread's row (appends to one thread take it in turn, so
    # sequence numbers are gap-free and increasing), takes the next number and bumps the
    # counters; everything below runs under that lock, and a refusal rolls it all back.
    locked = _number(thread=thread, kind=new.kind, created_at=created_at)
    seq = locked.last_seq
    if idempotency_key:
        # Under the lock, so a key sent twice at once is found here by the second one.
        existing = Entry.objects.filter(
            thread=locked, author=new.author, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            raise _Replayed(existing)

    if new.project is not None and new.project.customer_id != locked.customer_id:
        raise ValidationError("That project belongs to another customer.", code="wrong_project")

    if new.kind in CUSTOMER_KINDS and new.attachments:
        _check_file_budget(thread=locked, new=new.attachments)

    entry = Entry.objects.create(
        thread=locked,
        seq=seq,
        kind=new.kind,
        channel=new.channel,
        author=new.author,
        body=new.body,
        project=new.project,
        urgent=new.urgent,
        card_kind=new.card_kind,
        link_url=new.link_url,
        action_label=new.action_label,
        action_url=new.action_url,
        call_started_at=new.call_started_at,
        call_duration_seconds=new.call_duration_seconds,
        transcript=new.transcript,
        idempotency_key=idempotency_key or None,
        created_at=created_at,
        attachment_count=len(new.attachments),
    )
    for new_attachment in new.attachments:
        _attach(entry, new_attachment)
    _after_append(entry, customer=thread.customer, notify=notify)
    return entry


def _number(*, thread: Thread, kind: str, created_at: dt.datetime) -> Thread:
    """Lock the thread's row, take its next sequence number and bump its counters, in one
    UPDATE … RETURNING; returns the thread as it now is (its `last_seq` the new entry's)."""
    assignments = ["last_seq = last_seq + 1", "last_entry_at = %s"]
    params: list = [created_at]
    if kind in MESSAGE_KINDS:
        assignments.append("last_message_kind = %s")
        params.append(kind)
    for side in (Side.CUSTOMER, Side.STAFF):
        if kind in INBOUND_KINDS[side]:
            assignments.append(f"{side}_inbound = {side}_inbound + 1")
    table = connection.ops.quote_name(Thread._meta.db_table)
    sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE id = %s RETURNING *"  # noqa: S608 - our own columns
    rows = list(Thread.objects.raw(sql, [*params, thread.pk]))
    if not rows:
        raise Thread.DoesNotExist(f"No thread {thread.pk}")
    locked = rows[0]
    if Thread.customer.is_cached(thread):
        locked.customer = thread.customer  # what the caller already loaded
    return locked


def _check_file_budget(*, thread: Thread, new: Sequence[NewAttachment]) -> None:
    """Refuse files that would take what a customer has sent past ATTACHMENT_BYTES_PER_CUSTOMER
    (files are kept for ever: this is what one customer may fill the disk with). Under the
    thread's lock, so two sends at once cannot both squeeze under it."""
    budget = settings.ATTACHMENT_BYTES_PER_CUSTOMER
    used = (
        Attachment.objects.filter(entry__thread=thread, entry__kind__in=CUSTOMER_KINDS).aggregate(
            total=Sum("size")
        )["total"]
        or 0
    )
    if used + sum(len(a.data) for a in new) > budget:
        mb = 1024 * 1024
        raise ValidationError(
            "These files would take this conversation past its %(budget)s MB of files "
            "(%(used)s MB are used). Send fewer or smaller files, or write instead.",
            code="over_file_budget",
            params={"budget": budget // mb, "used": f"{used / mb:.0f}"},
        )


def _attach(entry: Entry, new: NewAttachment) -> Attachment:
    # The files are written inside the append's transaction: if it rolls back they stay on
    # disk, unreferenced, which costs space but never shows anyone anything.
    attachment = Attachment(
        entry=entry,
        name=new.name,
        content_type=new.content_type,
        size=len(new.data),
        width=new.width,
        height=new.height,
        staff_only=new.staff_only,
        sha256=hashlib.sha256(new.data).hexdigest(),
    )
    attachment.file.save(f"file{attachment.extension}", ContentFile(new.data), save=False)
    if new.thumbnail:
        attachment.thumbnail.save("thumb.jpg", ContentFile(new.thumbnail), save=False)
    attachment.save()
    return attachment


def _after_append(entry: Entry, *, customer: Customer, notify: bool) -> None:
    """Register what happens once the append commits (live updates, notifications). The
    apps that tell people (notifications: the Delivery rows) subscribe through
    `messaging.extensions` and run here, inside the append's transaction: an entry and its
    notifications commit or roll back together, and their tasks are queued on commit."""
    live.broadcast_entry_on_commit(entry)
    if notify:
        extensions.appended(entry=entry, customer=customer)


# -- the verbs -------------------------------------------------------------------------------


def post_customer_reply(
    *,
    customer: Customer,
    body: str,
    channel: str = Channel.PORTAL,
    project: Project | None = None,
    idempotency_key: str | None = None,
    at: dt.datetime | None = None,
    notify: bool = True,
    attachments: Sequence[NewAttachment] = (),
) -> Entry:
    """The customer writes to the business (portal, or an inbound SMS or email), with any
    checked attachments (messaging.attachments). `notify` False records it without telling
    anyone (history imports, the demo)."""
    body = clean_body(body, may_be_empty=_shown(attachments))
    thread = ensure_thread(customer=customer)
    new = _NewEntry(
        kind=Kind.CUSTOMER_REPLY,
        channel=channel,
        body=body,
        author=customer.user,
        project=project,
        attachments=tuple(attachments),
    )
    with transaction.atomic():
        entry, created = _append(
            thread=thread, new=new, idempotency_key=idempotency_key, at=at, notify=notify
        )
        # Keywords ("CONFIRM") act once, in the reply's transaction; a replay acts no more,
        # and neither does history recorded without telling anyone: an old CONFIRM or STOP
        # loaded into a thread says nothing about today.
        if created and notify:
            keywords.dispatch(entry=entry, customer=customer)
    return entry


def post_staff_message(
    *,
    thread: Thread,
    author: AbstractBaseUser | None,
    body: str,
    channel: str = Channel.PORTAL,
    project: Project | None = None,
    urgent: bool = False,
    idempotency_key: str | None = None,
    at: dt.datetime | None = None,
    notify: bool = True,
    attachments: Sequence[NewAttachment] = (),
) -> Entry:
    """A person at the business writes to the customer, with any checked attachments. No
    author: the business's shared mailbox answered by email."""
    new = _NewEntry(
        kind=Kind.STAFF_MESSAGE,
        channel=channel,
        body=clean_body(body, may_be_empty=_shown(attachments)),
        author=author,
        project=project,
        urgent=urgent,
        attachments=tuple(attachments),
    )
    entry, _ = _append(
        thread=thread, new=new, idempotency_key=idempotency_key, at=at, notify=notify
    )
    return entry


def post_automated_message(
    *,
    thread: Thread,
    body: str,
    channel: str = Channel.SMS,
    project: Project | None = None,
    urgent: bool = False,
    idempotency_key: str | None = None,
    at: dt.datetime | None = None,
    notify: bool = True,
) -> Entry:
    """A CRM automation writes to the customer; shown labelled "Automated"."""
    new = _NewEntry(
        kind=Kind.AUTOMATED, channel=channel, body=clean_body(body), project=project, urgent=urgent
    )
    entry, _ = _append(
        thread=thread, new=new, idempotency_key=idempotency_key, at=at, notify=notify
    )
    return entry


def post_event_card(
    *,
    thread: Thread,
    card_kind: str,
    title: str,
    link_url: str,
    project: Project | None = None,
    idempotency_key: str | None = None,
    at: dt.datetime | None = None,
    notify: bool = True,
    from_customer: bool = False,
    action_label: str = "",
    action_url: str = "",
) -> Entry:
    """A CRM event ("Invoice #2041 sent — $4,200") shown as a chip linking to its document.
    `from_customer`: the customer's own act (an estimate decision), made a customer card:
    unread for staff and routed to the business like a reply, not told to the customer.
    `action_label` and `action_url`: a second link, to an https page elsewhere (an invoice's
    "Pay")."""
    if not link_url.startswith(("/", "https://", "http://")) or link_url.startswith("//"):
        raise ValidationError("A card links to a page of ours or an http(s) address.")
    if bool(action_label) != bool(action_url) or not (
        not action_url or action_url.startswith("https://")
    ):
        raise ValidationError("A card's second link is an https address with a label.")
    new = _NewEntry(
        kind=Kind.CUSTOMER_CARD if from_customer else Kind.EVENT_CARD,
        channel=Channel.PORTAL if from_customer else Channel.SYSTEM,
        body=clean_body(title),
        project=project,
        card_kind=card_kind,
        link_url=link_url,
        action_label=action_label,
        action_url=action_url,
    )
    entry, _ = _append(
        thread=thread, new=new, idempotency_key=idempotency_key, at=at, notify=notify
    )
    return entry


def post_customer_card(
    *,
    customer: Customer,
    card_kind: str,
    title: str,
    link_url: str = "",
    project: Project | None = None,
    idempotency_key: str,
    attachments: Sequence[NewAttachment] = (),
    at: dt.datetime | None = None,
) -> tuple[Entry, bool]:
    """The customer makes a card ("Work request: Replace the back gate — 2 photos"), with
    its checked photos: shown to both sides like an event card, unread for staff like a
    reply, its files counted against the customer's budget. Returns the entry and whether it
    was made now (False: the key was used already, and that entry comes back)."""
    if link_url and (not link_url.startswith("/") or link_url.startswith("//")):
        raise ValidationError("A customer's card links to a page of ours.")
    thread = ensure_thread(customer=customer)
    new = _NewEntry(
        kind=Kind.CUSTOMER_CARD,
        channel=Channel.PORTAL,
        body=clean_body(title),
        author=customer.user,
        project=project,
        card_kind=card_kind,
        link_url=link_url,
        attachments=tuple(attachments),
    )
    return _append(thread=thread, new=new, idempotency_key=idempotency_key, at=at)


def log_call(
    *,
    thread: Thread,
    started_at: dt.datetime,
    duration_seconds: int,
    transcript: str = "",
    author: AbstractBaseUser | None = None,
    project: Project | None = None,
    idempotency_key: str | None = None,
) -> Entry:
    """A phone call marker; the transcript is for staff only."""
    if duration_seconds < 0:
        raise ValidationError("A call cannot last less than nothing.", code="negative_duration")
    new = _NewEntry(
        kind=Kind.CALL,
        channel=Channel.SYSTEM,
        author=author,
        project=project,
        call_started_at=started_at,
        call_duration_seconds=duration_seconds,
        transcript=(transcript or "").strip(),
    )
    entry, _ = _append(thread=thread, new=new, idempotency_key=idempotency_key, at=started_at)
    return entry


def add_internal_note(
    *,
    thread: Thread,
    author: AbstractBaseUser | None,
    body: str,
    project: Project | None = None,
    idempotency_key: str | None = None,
    at: dt.datetime | None = None,
    attachments: Sequence[NewAttachment] = (),
) -> Entry:
    """A note for staff only; never reaches the customer in any form. By a staff member, or
    by Porchlight itself (no author)."""
    new = _NewEntry(
        kind=Kind.INTERNAL_NOTE,
        channel=Channel.SYSTEM,
        body=clean_body(body, may_be_empty=bool(attachments)),
        author=author,
        project=project,
        attachments=tuple(attachments),
    )
    entry, _ = _append(thread=thread, new=new, idempotency_key=idempotency_key, at=at)
    return entry


def mark_read(
    *, thread: Thread, side: Side, up_to_seq: int | None = None, at: dt.datetime | None = None
) -> int:
    """`side` has read the thread up to `up_to_seq` (default: everything). Returns how many
    entries became read. Moves the side's watermark and appends one ReadMark: the cost does
    not grow with how many entries it covers (a first visit to a long thread reads them all)."""
    read_seq_field = f"{side}_read_seq"
    # Watermarks only move forward, so if even the caller's copy already covers up_to_seq
    # there is nothing to do, and no lock to take (the common case: reopening a read thread).
    if up_to_seq is not None and up_to_seq <= getattr(thread, read_seq_field):
        return 0
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        already = getattr(locked, read_seq_field)
        target = locked.last_seq if up_to_seq is None else min(up_to_seq, locked.last_seq)
        if target <= already:
            return 0
        now = at or timezone.now()
        # `<side>_read` counts the side's inbound entries up to its watermark: all of them
        # but those after the new watermark, which are few (the page reads to its newest) and
        # none at all when it reads to the end.
        unread_after = 0
        if target < locked.last_seq:
            unread_after = Entry.objects.filter(
                thread=locked, seq__gt=target, kind__in=INBOUND_KINDS[side]
            ).count()
        read_now = getattr(locked, f"{side}_inbound") - unread_after
        newly_read = read_now - getattr(locked, f"{side}_read")
        ReadMark.objects.create(thread=locked, side=side, up_to_seq=target, at=now)
        Thread.objects.filter(pk=locked.pk).update(
            **{read_seq_field: target, f"{side}_read": read_now, f"{side}_read_at": now}
        )
        # Keep the caller's instance current without another query.
        setattr(thread, read_seq_field, target)
        setattr(thread, f"{side}_read", read_now)
        setattr(thread, f"{side}_read_at", now)
        live.broadcast_read_on_commit(thread=thread, side=side, from_seq=already, up_to_seq=target)
        # What the apps above add (crm_events: conversation.read), in this transaction.
        extensions.read(thread=thread, side=side, up_to_seq=target, at=now)
    return newly_read
