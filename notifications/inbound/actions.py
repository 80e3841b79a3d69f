"""Inbound: texts and emails that people send us, from the webhook to the thread.

Every message is first an `InboundMessage` row, unique on the provider's id: a replay, however
many and however concurrent, finds the row and changes nothing. A message from a customer is
then appended to their thread (`messaging.actions.post_customer_reply`, keyed by the
provider's id too); from a stranger, or one we cannot append, it stays for staff at
/staff/unmatched/, never dropped.

Photos texted to us must be fetched from Twilio. That is a provider call, so it never happens
inside the webhook: such a message waits as a row ("received") and a task fetches its photos
and appends it; the sweeper re-queues rows a task lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from email.message import Message

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging import actions as thread_actions
from messaging import keywords
from messaging.attachments import NewAttachment, check_attachment
from messaging.models import Attachment, Entry, Thread
from notifications import reply_addresses
from notifications.inbound import inbound_mail
from notifications.inbound.mail_kinds import (
    MailKind,
    bounced_message_ids,
    classify,
    failed_recipients,
)
from notifications.models import Delivery, InboundMessage
from notifications.outbound import provider_status, transports
from notifications.outbound.preferences import set_sms_opt_out
from notifications.outbound.transports import TransportError
from portal import actions as portal_actions
from portal.celery import run_task
from portal.models import Customer
from portal.phones import normalize_phone

logger = logging.getLogger(__name__)

Status = InboundMessage.Status
FETCH_MEDIA_TASK = "notifications.fetch_inbound_media"

# Carrier keywords (CTIA; Twilio answers them itself, so we never text a reply), registered
# with messaging.keywords for texts (apps.py): matched on the whole message, ignoring case,
# surrounding spaces and punctuation, and spaces inside ("OPT OUT" is OPTOUT).
OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "unstop", "yes"})
HELP_WORDS = frozenset({"help", "info"})

# A message whose photos are still to be fetched is re-queued by the sweeper after this long,
# and after this long again for each try it has had.
FETCH_GRACE = dt.timedelta(minutes=2)
# Tries at a photo that does not come (Twilio's media failing, a trickle that never ends)
# before the text goes into the thread without it: about 10 minutes of tries in all.
MAX_FETCH_ATTEMPTS = 5


@dataclass(frozen=True)
class IncomingSms:
    message_sid: str
    sender: str  # E.164 when it is a phone number; as received otherwise (short codes)
    recipient: str
    body: str
    media: tuple[dict, ...] = ()  # {"url", "content_type"}
    refused_media: tuple[str, ...] = ()  # why media the webhook would not fetch was refused


def receive_sms(*, sms: IncomingSms, received_at: dt.datetime | None = None) -> InboundMessage:
    """The Twilio webhook's action: record the text once, and append it to its customer's
    thread now, or (with photos) once a task has fetched them."""
    with transaction.atomic():
        inbound, created = _record(
            channel=InboundMessage.Channel.SMS,
            provider_id=sms.message_sid,
            sender=sms.sender,
            recipient=sms.recipient,
            body=sms.body,
            media=[dict(m) for m in sms.media],
            reason="; ".join(sms.refused_media),
            received_at=received_at or timezone.now(),
        )
        if not created:
            return inbound
        if inbound.media:
            transaction.on_commit(lambda: _queue_fetch(inbound.pk), robust=True)
            return inbound
        _deliver(inbound, attachments=[])
    return inbound


def _record(*, channel: str, provider_id: str, **fields) -> tuple[InboundMessage, bool]:
    """The row for this provider id, created if new. Concurrent deliveries of one id wait on
    the unique index for the first to commit, then find its row."""
    try:
        with transaction.atomic():
            return InboundMessage.objects.create(
                channel=channel, provider_id=provider_id, **fields
            ), True
    except IntegrityError:
        return InboundMessage.objects.get(channel=channel, provider_id=provider_id), False


def _queue_fetch(inbound_id: int) -> None:
    try:
        run_task(FETCH_MEDIA_TASK, inbound_id)
    except Exception:
        # The row waits as "received": the sweeper queues it again.
        logger.exception("could not queue the media fetch of inbound message %s", inbound_id)


def _customer_for(inbound: InboundMessage) -> Customer | None:
    if inbound.channel != InboundMessage.Channel.SMS:
        return None
    try:
        number = normalize_phone(inbound.sender)
    except ValidationError:
        return None  # a short code, a name, or "+1555": no number a customer can have
    return (
        Customer.objects.select_related("business", "user")
        .filter(phone=number, user__is_active=True)
        .first()
    )


def _key(inbound: InboundMessage) -> str:
    prefix = "twilio" if inbound.channel == InboundMessage.Channel.SMS else "email"
    return f"{prefix}:{inbound.provider_id}"


def _deliver(inbound: InboundMessage, *, attachments: list[NewAttachment]) -> None:
    """Append `inbound` to its customer's thread, or leave it for staff. Inside a transaction,
    with the row's state current."""
    customer = _customer_for(inbound)
    if customer is None:
        _park(inbound, reason="No customer has this number", attachments=attachments)
        return
    entry = _append(inbound, customer=customer, channel=Entry.Channel.SMS, attachments=attachments)
    if entry is None:
        return
    if inbound.reason:
        # Photos we could not take: staff should know one was sent.
        thread_actions.add_internal_note(
            thread=entry.thread,
            author=None,
            body=f"Not everything {customer.first_name} texted could be kept: {inbound.reason}",
            idempotency_key=f"{_key(inbound)}:media",
        )


def _append(
    inbound: InboundMessage, *, customer: Customer, channel: str, attachments
) -> Entry | None:
    """Append `inbound` to the customer's thread as their reply and mark it appended; a body
    the thread refuses leaves it for staff with the reason (None then)."""
    try:
        entry = thread_actions.post_customer_reply(
            customer=customer,
            body=inbound.body,
            channel=channel,
            idempotency_key=_key(inbound),
            at=inbound.received_at,
            attachments=attachments,
        )
    except ValidationError as error:
        if error.code == "over_file_budget" and attachments:
            # The words still reach the thread; staff are told what was left out.
            inbound.reason = "; ".join(filter(None, [inbound.reason, *error.messages]))[:300]
            return _append(inbound, customer=customer, channel=channel, attachments=[])
        _park(inbound, reason=" ".join(error.messages), attachments=attachments, refused=True)
        return None
    _mark(inbound, status=Status.APPENDED, customer=customer, entry=entry)
    return entry


def _mark(inbound: InboundMessage, **changes) -> None:
    changes.setdefault("handled_at", timezone.now())
    for name, value in changes.items():
        setattr(inbound, name, value)
    inbound.save(update_fields=list(changes))


def _park(
    inbound: InboundMessage,
    *,
    reason: str,
    attachments: list[NewAttachment],
    refused: bool = False,
) -> None:
    """Keep it for staff, with its photos stored so that assigning it later loses nothing."""
    files = [_store(inbound, attachment) for attachment in attachments]
    reasons = "; ".join(filter(None, [reason, inbound.reason]))
    _mark(
        inbound,
        status=Status.REJECTED if refused else Status.UNMATCHED,
        reason=reasons[:300],
        files=files,
        handled_at=None,
    )


def _store(inbound: InboundMessage, attachment: NewAttachment) -> dict:
    path = default_storage.save(
        f"inbound/{inbound.pk}/file{_extension(attachment)}", ContentFile(attachment.data)
    )
    return {
        "path": path,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "staff_only": attachment.staff_only,
    }


def _extension(attachment: NewAttachment) -> str:
    # Files kept for staff may be of any type (check_attachment calls them octet-stream).
    return Attachment.TYPES.get(attachment.content_type, (".bin", False))[0]


def _stored_attachments(inbound: InboundMessage) -> list[NewAttachment]:
    found = []
    for stored in inbound.files:
        with default_storage.open(stored["path"], "rb") as handle:
            data = handle.read()
        found.append(
            check_attachment(
                name=stored["name"],
                content_type=stored["content_type"],
                data=data,
                staff_only=stored.get("staff_only", False),
            )
        )
    return found


# -- carrier keywords: handlers registered with messaging.keywords (apps.py), texts only ---------


def stop_texts(*, entry: Entry, customer: Customer) -> None:
    """STOP and its kin: no more texts to this customer, and a card in the thread saying so
    (no notification: Twilio has already answered the customer)."""
    if set_sms_opt_out(customer=customer, opted_out=True):
        _keyword_card(
            entry,
            f"Texts stopped: {customer.first_name} replied {_word(entry)}. "
            "Messages now go by email.",
        )


def resume_texts(*, entry: Entry, customer: Customer) -> None:
    """START and its kin: texts again, with a card."""
    if set_sms_opt_out(customer=customer, opted_out=False):
        _keyword_card(entry, f"Texts resumed: {customer.first_name} replied {_word(entry)}.")


def record_help(*, entry: Entry, customer: Customer) -> None:
    """HELP: the carrier answered it; the thread records that it was asked."""
    _keyword_card(
        entry, f"{customer.first_name} texted {_word(entry)}; the carrier sent its help reply."
    )


def _word(entry: Entry) -> str:
    return keywords.normalise(entry.body).upper()


def _keyword_card(entry: Entry, title: str) -> None:
    thread_actions.post_event_card(
        thread=entry.thread,
        card_kind=Entry.CardKind.OPT_OUT,
        title=title,
        link_url="/settings/notifications/",
        idempotency_key=f"{entry.idempotency_key or entry.pk}:keyword",
        notify=False,
    )


# -- photos: fetched by a task ----------------------------------------------------------------


def fetch_inbound_media(*, inbound_id: int) -> str:
    """The task: fetch the photos of a received text (outside any transaction), then append
    it. Transient provider errors leave the row waiting for the next try; a photo refused
    for good is left out, with the reason for staff."""
    counted = InboundMessage.objects.filter(pk=inbound_id, status=Status.RECEIVED).update(
        fetch_attempts=F("fetch_attempts") + 1
    )
    inbound = InboundMessage.objects.filter(pk=inbound_id).first() if counted else None
    if inbound is None:
        return "nothing to do"
    last_try = inbound.fetch_attempts >= MAX_FETCH_ATTEMPTS
    # A stranger's photos wait for staff as files: checked from their headers, and decoded
    # (for thumbnails) only if staff put them in a thread.
    decode = _customer_for(inbound) is not None
    attachments, refused = [], []
    transport = transports.sms_transport()
    for number, media in enumerate(inbound.media[: settings.ATTACHMENTS_PER_MESSAGE], start=1):
        try:
            fetched = transport.fetch_media(media.get("url", ""))
            attachments.append(
                check_attachment(
                    name=f"photo-{number}",
                    content_type=fetched.content_type or media.get("content_type", ""),
                    data=fetched.data,
                    decode=decode,
                )
            )
        except TransportError as error:
            if not error.permanent and not last_try:
                logger.warning(
                    "inbound %s: media %s not fetched yet (try %s): %s",
                    inbound_id,
                    number,
                    inbound.fetch_attempts,
                    error,
                )
                return "retry"
            if error.permanent:
                refused.append(f"photo {number}: {error.message}")
            else:
                # The words are not held back for ever by a photo that never comes.
                refused.append(
                    f"photo {number} could not be fetched "
                    f"({inbound.fetch_attempts} tries; {error.message})"
                )
        except ValidationError as error:
            refused.append(f"photo {number}: {' '.join(error.messages)}")
    if len(inbound.media) > settings.ATTACHMENTS_PER_MESSAGE:
        refused.append(f"only the first {settings.ATTACHMENTS_PER_MESSAGE} photos are kept")
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=inbound_id)
        if locked.status != Status.RECEIVED:
            return "already handled"
        if refused:
            locked.reason = "; ".join(filter(None, [locked.reason, *refused]))[:300]
        _deliver(locked, attachments=attachments)
    return locked.status


def sweep_inbound(*, now: dt.datetime | None = None) -> int:
    """Re-queue the photo fetch of texts whose task went missing (Redis down, worker lost)."""
    now = now or timezone.now()
    waiting = InboundMessage.objects.filter(
        status=Status.RECEIVED, received_at__lt=now - FETCH_GRACE
    ).order_by("received_at")
    # Each try waits a grace longer than the one before (2, 4, 6... minutes after arrival).
    stuck = [
        inbound_id
        for inbound_id, received_at, attempts in waiting.values_list(
            "pk", "received_at", "fetch_attempts"
        )[:200]
        if received_at < now - FETCH_GRACE * max(1, attempts)
    ]
    for inbound_id in stuck:
        _queue_fetch(inbound_id)
    return len(stuck)


# -- staff: what matched no one ---------------------------------------------------------------


def assign_inbound(*, inbound: InboundMessage, customer: Customer, by) -> Entry:
    """Staff put an unmatched message in a customer's thread, with its original time and
    its provider's key (so it is never appended twice), and it leaves the list."""
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=inbound.pk)
        if locked.status not in (Status.UNMATCHED, Status.REJECTED):
            raise ValidationError("That message was already handled.", code="handled")
        channel = (
            Entry.Channel.SMS
            if locked.channel == InboundMessage.Channel.SMS
            else Entry.Channel.EMAIL
        )
        entry = thread_actions.post_customer_reply(
            customer=customer,
            body=locked.body,
            channel=channel,
            idempotency_key=_key(locked),
            at=locked.received_at,
            attachments=_stored_attachments(locked),
        )
        _mark(locked, status=Status.ASSIGNED, customer=customer, entry=entry, handled_by=by)
    return entry


def new_customer_from_inbound(
    *, inbound: InboundMessage, name: str, project_title: str, by
) -> Entry:
    """Staff make a new customer of a stranger who texted or emailed (their number or
    address is the sender's), with a project if named, and the message opens their thread.
    All or nothing: a refusal (the name missing, the sender already a customer, the message
    already handled) leaves no customer behind."""
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=inbound.pk)
        if locked.status not in (Status.UNMATCHED, Status.REJECTED):
            raise ValidationError("That message was already handled.", code="handled")
        is_sms = locked.channel == InboundMessage.Channel.SMS
        customer = portal_actions.create_customer(
            name=name,
            phone=locked.sender if is_sms else "",
            email="" if is_sms else locked.sender.lower(),
            project_title=project_title,
        )
        return assign_inbound(inbound=locked, customer=customer, by=by)


def dismiss_inbound(*, inbound: InboundMessage, by) -> None:
    """Staff set aside a message that belongs to no one (spam, a wrong number)."""
    updated = InboundMessage.objects.filter(
        pk=inbound.pk, status__in=[Status.UNMATCHED, Status.REJECTED]
    ).update(status=Status.DISMISSED, handled_by=by, handled_at=timezone.now())
    if not updated:
        raise ValidationError("That message was already handled.", code="handled")


# -- email ------------------------------------------------------------------------------------

# A bounce answers one email; one quoting more ids than this is not a bounce we believe.
MAX_BOUNCED_IDS = 20


def receive_email(
    *,
    message: Message,
    esp_event_id: str = "",
    envelope_recipient: str = "",
    authentication: inbound_mail.Authentication = inbound_mail.NO_VERDICT,
) -> InboundMessage:
    """The email provider's inbound webhook's action (through anymail): record the email once
    per Message-ID; a person's reply to one of our reply addresses, from the thread's own
    person, goes into the thread as its visible text; bounces fail the delivery they answer;
    auto-replies and receipts are recorded and nothing more; the rest waits for staff. A
    From that the provider's SPF/DKIM verdict does not vouch for (`authentication`) waits
    for staff too: a From header is only what the sender typed."""
    provider_id = inbound_mail.message_id(message) or f"<esp-{esp_event_id or uuid.uuid4().hex}>"
    kind = classify(message)
    addresses = inbound_mail.recipients(message, envelope_recipient)  # bounded: read once
    with transaction.atomic():
        inbound, created = _record(
            channel=InboundMessage.Channel.EMAIL,
            provider_id=provider_id[:200],
            sender=inbound_mail.sender(message)[:320],
            recipient=", ".join(addresses)[:320],
            subject=inbound_mail.header(message, "Subject")[:300],
            body=(inbound_mail.visible_text(message) if kind == MailKind.HUMAN else "")[:20_000],
            received_at=timezone.now(),
        )
        if not created:
            return inbound
        if kind != MailKind.HUMAN:
            _automatic(inbound, message=message, kind=kind)
            return inbound
        _deliver_email(inbound, message=message, addresses=addresses, authentication=authentication)
    return inbound


def _automatic(inbound: InboundMessage, *, message: Message, kind: MailKind) -> None:
    reason = {
        MailKind.BOUNCE: "A bounce",
        MailKind.AUTO_REPLY: "An automatic reply (out of office…)",
        MailKind.READ_RECEIPT: "A read receipt",
    }[kind]
    if kind == MailKind.BOUNCE:
        # Anyone can send mail that looks like a bounce: it is checked before it has any
        # effect (_bounced_deliveries). The ESP's own bounce webhook (anymail's tracking
        # events, behind its secret) needs no such check.
        bounced = _bounced_deliveries(message)
        if bounced:
            to = ", ".join(sorted({d.recipient for d in bounced}))
            reason = f"A bounce of {len(bounced)} notification(s) to {to}"
            moved = provider_status.fail_deliveries(deliveries=bounced, reason="Email bounced")
            customers = [d for d in moved if d.audience == Delivery.Audience.CUSTOMER]
            if customers:
                provider_status.email_failed(deliveries=customers, reason="bounced")
        else:
            reason = "A bounce that names none of our emails to the address that failed"
    _mark(inbound, status=Status.AUTOMATIC, reason=reason[:300])


def _bounced_deliveries(message: Message) -> list[Delivery]:
    """The deliveries a bounce answers: only emails we really sent, named by a Message-ID
    whose signature checks (reply_addresses.delivery_id_of), to an address the bounce says
    failed. Each email fails with every delivery it carried (they share its provider id)."""
    failed = {inbound_mail.normalise_address(a) for a in failed_recipients(message)} - {""}
    quoted = bounced_message_ids(message)
    if not failed or len(quoted) > MAX_BOUNCED_IDS:
        return []
    ids = {pk for value in quoted if (pk := reply_addresses.delivery_id_of(value)) is not None}
    if not ids:
        return []
    heads = [
        head
        for head in Delivery.objects.filter(
            pk__in=ids, channel=Delivery.Channel.EMAIL, sent_at__isnull=False
        )
        .exclude(provider_id="")
        .select_related("entry")
        if inbound_mail.normalise_address(head.recipient) in failed
    ]
    if not heads:
        return []
    carried = Q()
    for head in heads:
        carried |= Q(entry__thread_id=head.entry.thread_id, provider_id=head.provider_id)
    return list(
        Delivery.objects.filter(carried, channel=Delivery.Channel.EMAIL).select_related(
            "entry__thread__customer"
        )
    )


def _deliver_email(
    inbound: InboundMessage,
    *,
    message: Message,
    addresses: list[str],
    authentication: inbound_mail.Authentication,
) -> None:
    reply = next(filter(None, map(reply_addresses.parse_reply_address, addresses)), None)
    if reply is None:
        _park(inbound, reason="Not a reply to one of our emails", attachments=[])
        return
    thread = (
        Thread.objects.select_related("customer__business", "customer__user")
        .filter(pk=reply.thread_id)
        .first()
    )
    if thread is None:
        _park(inbound, reason="A reply address of a thread that no longer exists", attachments=[])
        return
    attachments, refused = _email_attachments(message)
    if refused:
        inbound.reason = "; ".join(refused)[:300]
    if authentication.verdict == "fail":
        _park(
            inbound,
            reason=f"Its sender is not vouched for ({authentication.reason}): it may be forged",
            attachments=attachments,
        )
        return
    if reply.side == reply_addresses.CUSTOMER_SIDE:
        _customer_email(inbound, thread=thread, attachments=attachments)
    else:
        _staff_email(inbound, thread=thread, attachments=attachments)


def _customer_email(inbound: InboundMessage, *, thread: Thread, attachments) -> None:
    customer = thread.customer
    # Exact comparison of normalised addresses (inbound_mail.normalise_address), never
    # case-folded: "ſarah@example.com" is not Sarah. An empty address matches nobody.
    if not inbound.sender or inbound_mail.normalise_address(customer.email) != inbound.sender:
        _park(
            inbound,
            reason=f"Sent to {customer.name}'s reply address, but not from {customer.email}",
            attachments=attachments,
        )
        return
    entry = _append(
        inbound, customer=customer, channel=Entry.Channel.EMAIL, attachments=attachments
    )
    if entry is not None:
        _note_refused_files(inbound, entry=entry, who=customer.first_name)


def _staff_email(inbound: InboundMessage, *, thread: Thread, attachments) -> None:
    """A contractor answering, by email, the notification of a customer's message."""
    business = thread.customer.business
    # The database's case-insensitive match only finds candidates (PostgreSQL's upper() makes
    # "ſ" an "S"); the exact comparison decides.
    candidates = (
        get_user_model().objects.filter(is_staff=True, is_active=True, email__iexact=inbound.sender)
        if inbound.sender
        else []
    )
    staff_user = next(
        (u for u in candidates if inbound_mail.normalise_address(u.email) == inbound.sender),
        None,
    )
    from_office = bool(inbound.sender) and (
        inbound_mail.normalise_address(business.email) == inbound.sender
    )
    if staff_user is None and not from_office:
        _park(
            inbound,
            reason="Sent to a staff reply address by someone who is not staff",
            attachments=attachments,
        )
        return
    try:
        entry = thread_actions.post_staff_message(
            thread=thread,
            author=staff_user,  # None: the business's own mailbox answered
            body=inbound.body,
            channel=Entry.Channel.EMAIL,
            idempotency_key=_key(inbound),
            at=inbound.received_at,
            attachments=attachments,
        )
    except ValidationError as error:
        _park(inbound, reason=" ".join(error.messages), attachments=attachments, refused=True)
        return
    _mark(inbound, status=Status.APPENDED, customer=thread.customer, entry=entry)
    _note_refused_files(inbound, entry=entry, who=staff_user.get_username() if staff_user else "")


def _email_attachments(message: Message) -> tuple[list[NewAttachment], list[str]]:
    """Photos become the entry's photos; other files are kept for staff; what cannot be kept
    (too large, too many, unreadable) is named in a note."""
    kept, refused = [], []
    for number, mail_file in enumerate(inbound_mail.files(message), start=1):
        name = mail_file.name or f"attachment {number}"
        if len(kept) >= settings.ATTACHMENTS_PER_MESSAGE:
            refused.append(f"{name}: only {settings.ATTACHMENTS_PER_MESSAGE} files are kept")
            continue
        try:
            kept.append(
                check_attachment(
                    name=name,
                    content_type=mail_file.content_type,
                    data=mail_file.data,
                    staff_only=not mail_file.content_type.startswith("image/"),
                )
            )
        except ValidationError as error:
            refused.append(" ".join(error.messages))
        except Exception:  # noqa: BLE001 - one file the image library chokes on must not
            # cost the whole email: a damaged PNG raises SyntaxError, which Pillow does not
            # document. Left out, named in the note; the words still go into the thread.
            logger.warning("inbound email: attachment %r could not be read", name, exc_info=True)
            refused.append(f"{name} could not be read")
    return kept, refused


def _note_refused_files(inbound: InboundMessage, *, entry: Entry, who: str) -> None:
    if inbound.reason:
        thread_actions.add_internal_note(
            thread=entry.thread,
            author=None,
            body=f"Not every file {who} emailed could be kept: {inbound.reason}",
            idempotency_key=f"{_key(inbound)}:files",
        )
