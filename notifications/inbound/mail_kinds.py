"""What kind of inbound email a message is: a person writing, an auto-reply, a bounce or a read
receipt. Pure: the standard library's `email` package only, no models, no network, so the
inbound webhook can ask it about anything a provider posts, and tests can feed it raw mail.

The rules, strongest first (docs/inbound-email-kinds.md has the reasoning and the corpus):

1. A report (RFC 6522 multipart/report): report-type=delivery-status (RFC 3464) is a BOUNCE,
   report-type=disposition-notification (RFC 8098) a READ_RECEIPT. A report whose parts carry
   message/delivery-status or message/disposition-notification counts the same when its
   report-type is missing or mangled. Any other report (a spam complaint, RFC 5965) is a
   machine writing, so an AUTO_REPLY.
2. A sender that is MAILER-DAEMON or postmaster, or an X-Failed-Recipients header: a BOUNCE
   (Gmail, qmail and old sendmail bounce in plain text).
3. Auto-Submitted with any value but "no" (RFC 3834), X-Autoreply / X-Autorespond /
   X-Autoresponder and friends, Precedence: auto_reply, or an out-of-office subject: an
   AUTO_REPLY.
4. Anything else is a HUMAN.

Never enough on their own: X-Auto-Response-Suppress (Outlook puts it on mail people write),
Precedence: bulk / list / junk (mailing lists add it to every post), and
X-MS-Exchange-Inbox-Rules-Loop (Exchange adds it when a rule forwards a person's message).

Every function takes whatever a provider sends: a message built by any `email` policy,
mangled MIME, unknown charsets, thousands of parts. None of them raises; a message they cannot
read is a HUMAN with no ids, so a person's reply is never dropped for looking odd.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Iterator
from email.header import Header, decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr

logger = logging.getLogger(__name__)

# A bounce carries a handful of parts; a message with thousands is an attack or an accident,
# and everything we look for sits near the top. Walks stop here.
MAX_PARTS = 200
# Bytes of one text part scanned for an inline copy of the original headers (qmail, Gmail).
MAX_SCAN_BYTES = 64 * 1024


class MailKind(enum.StrEnum):
    HUMAN = "human"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    READ_RECEIPT = "read_receipt"


_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_MDN_TYPES = frozenset(
    {"message/disposition-notification", "message/global-disposition-notification"}
)
_EMBEDDED_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADERS_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})

_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
# Headers autoresponders (vacation, cPanel, Zimbra, Yandex, helpdesks) stamp on what they send.
_AUTORESPONDER_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Autoreply-From",
    "X-Mail-Autoreply",
)
_FALSE_VALUES = frozenset({"", "no", "false", "0", "off"})

# Subject prefixes mail clients put on out-of-office replies, by language. A prefix counts
# only at the start and followed by a colon: "Out of office next week?" is a person asking.
_AUTO_REPLY_PREFIXES = (
    "out of office",
    "out of office autoreply",
    "out of office reply",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "automatic response",
    "automatische antwort",  # German
    "abwesenheitsnotiz",  # German, older Outlook
    "réponse automatique",  # French
    "absence du bureau",  # French
    "respuesta automática",  # Spanish
    "fuera de la oficina",  # Spanish
    "risposta automatica",  # Italian
    "automatisch antwoord",  # Dutch
    "resposta automática",  # Portuguese
    "autosvar",  # Swedish, Norwegian, Danish
    "automatisk svar",  # Swedish, Norwegian, Danish
    "automaattinen vastaus",  # Finnish
    "automatyczna odpowiedź",  # Polish
    "automatická odpověď",  # Czech
    "automatikus válasz",  # Hungarian
    "otomatik yanıt",  # Turkish
    "αυτόματη απάντηση",  # Greek
    "автоматический ответ",  # Russian
    "автоматична відповідь",  # Ukrainian
    "自動応答",  # Japanese
    "自動返信",  # Japanese
    "自动回复",  # Chinese (simplified)
    "自動回覆",  # Chinese (traditional)
    "자동 회신",  # Korean
)
_PREFIX_ALTERNATIVES = "|".join(re.escape(p) for p in _AUTO_REPLY_PREFIXES)
_AUTO_REPLY_SUBJECT = re.compile(rf"^\s*(?:{_PREFIX_ALTERNATIVES})\s*[:：]", re.IGNORECASE)
# Lotus Notes: "AUTO: Smith, John is out of the office. (returning 05/01/2010)"; AOL:
# "Re: Rose Bouquet Special (Automatic Response)". Both shapes no person types.
_AUTO_REPLY_SUBJECT_SHAPES = (
    re.compile(r"^\s*AUTO:.*\bout of (?:the )?office\b", re.IGNORECASE),
    re.compile(r"\((?:automatic|auto)[ -]?(?:response|reply)\)\s*$", re.IGNORECASE),
)

_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# An inline copy of the original's headers in a plain-text bounce (qmail, Gmail, old MTAs).
_INLINE_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


# -- Public API --------------------------------------------------------------------------------


def classify(message: Message) -> MailKind:
    """The kind of `message`. Never raises: what cannot be read is a HUMAN."""
    try:
        return _classify(message)
    except Exception:  # hostile input must not take the webhook down
        logger.warning(
            "Could not classify an inbound email; treating it as a person's", exc_info=True
        )
        return MailKind.HUMAN


def bounced_message_ids(message: Message) -> list[str]:
    """For a bounce, the Message-IDs of the original messages it answers, with angle brackets
    ("<delivery-12.abc@porchlight.localhost>"): from the returned message or headers attached
    to the report, else the bounce's In-Reply-To / References, else an inline copy of the
    original headers in the text. Empty for anything that is not a bounce."""
    try:
        if _classify(message) is not MailKind.BOUNCE:
            return []
        return (
            _attached_message_ids(message)
            or _dedupe(_ids_in(_header_values(message, "In-Reply-To", "References")))
            or _inline_message_ids(message)
        )
    except Exception:
        logger.warning("Could not read a bounce's original Message-ID", exc_info=True)
        return []


def failed_recipients(message: Message) -> list[str]:
    """For a bounce, the addresses that failed: each DSN recipient block whose Action is
    "failed" (Original-Recipient, else Final-Recipient), else X-Failed-Recipients. A delay
    warning (Action: delayed) is a bounce with no failed recipient yet. Empty for anything
    that is not a bounce."""
    try:
        if _classify(message) is not MailKind.BOUNCE:
            return []
        report = _find_report(message)
        blocks = list(_dsn_recipient_blocks(report)) if report is not None else []
        if blocks:
            return _dedupe(
                address for block in blocks if (address := _failed_address(block)) is not None
            )
        return _dedupe(
            address
            for _, address in getaddresses(_header_values(message, "X-Failed-Recipients"))
            if "@" in address
        )
    except Exception:
        logger.warning("Could not read a bounce's failed recipients", exc_info=True)
        return []


# -- Classification ----------------------------------------------------------------------------


def _classify(message: Message) -> MailKind:
    report = _find_report(message)
    if report is not None:
        return _report_kind(report)
    if _header_values(message, "X-Failed-Recipients") or _from_a_mail_system(message):
        return MailKind.BOUNCE
    if _is_auto_reply(message):
        return MailKind.AUTO_REPLY
    return MailKind.HUMAN


def _report_kind(report: Message) -> MailKind:
    report_type = _param(report, "report-type").lower()
    if report_type == "delivery-status":
        return MailKind.BOUNCE
    if report_type == "disposition-notification":
        return MailKind.READ_RECEIPT
    # A report-type that is missing or mangled: the machine-readable part still says which.
    part_types = {part.get_content_type() for part in _children(report)}
    if part_types & _DSN_TYPES:
        return MailKind.BOUNCE
    if part_types & _MDN_TYPES:
        return MailKind.READ_RECEIPT
    # Spam complaints (feedback-report) and other reports: a machine wrote it, not a person.
    return MailKind.AUTO_REPLY


def _from_a_mail_system(message: Message) -> bool:
    for value in _header_values(message, "From", "Sender"):
        local = parseaddr(value)[1].rpartition("@")[0] or parseaddr(value)[1]
        if local.lower() in _BOUNCE_SENDERS:
            return True
    return False


def _is_auto_reply(message: Message) -> bool:
    for value in _header_values(message, "Auto-Submitted"):
        # RFC 3834: "no" is a person; anything else ("auto-replied (vacation)",
        # "auto-generated", "auto-notified") is not. Comments and parameters are noise.
        token = re.split(r"[\s;(]", value.strip(), maxsplit=1)[0].lower()
        if token and token != "no":
            return True
    for name in _AUTORESPONDER_HEADERS:
        if any(
            value.strip().lower() not in _FALSE_VALUES for value in _header_values(message, name)
        ):
            return True
        # A bare "X-Autorespond:" with no value is still the autoresponder speaking.
        if _has_header(message, name) and not _header_values(message, name):
            return True
    if any(v.strip().lower() == "auto_reply" for v in _header_values(message, "Precedence")):
        return True
    subject = " ".join(_header_values(message, "Subject"))
    return bool(_AUTO_REPLY_SUBJECT.search(subject)) or any(
        shape.search(subject) for shape in _AUTO_REPLY_SUBJECT_SHAPES
    )


# -- Reports -----------------------------------------------------------------------------------


def _find_report(message: Message) -> Message | None:
    """The message's own multipart/report, if any: the top part, or one a gateway wrapped in
    multipart/mixed. Never one inside an attached message: a person forwarding a bounce as an
    attachment is still a person."""
    for part in _walk(message):
        if part.get_content_type() == "multipart/report":
            return part
    return None


def _dsn_recipient_blocks(report: Message) -> Iterator[Message]:
    """The per-recipient field groups of the report's delivery-status parts (RFC 3464 section
    2.3): the groups that name a recipient."""
    for part in _children(report):
        if part.get_content_type() not in _DSN_TYPES:
            continue
        for block in _field_groups(part):
            if block.get("Final-Recipient") or block.get("Original-Recipient"):
                yield block


def _field_groups(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package splits delivery-status into groups
        return [group for group in payload[:MAX_PARTS] if isinstance(group, Message)]
    # A payload the parser left as text (an odd transfer encoding, say): split it ourselves.
    text = _decoded_text(part)
    parser = HeaderParser()
    return [parser.parsestr(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", text)][
        :MAX_PARTS
    ]


def _failed_address(block: Message) -> str | None:
    action = _text(block.get("Action", "")).strip().lower()
    if action and action != "failed":  # delayed, delivered, relayed, expanded
        return None
    for name in ("Original-Recipient", "Final-Recipient"):
        value = _text(block.get(name, ""))
        # "rfc822; someone@example.com": an address type, a semicolon, the address.
        _, _, address = value.rpartition(";")
        address = address.strip().strip("<>").strip()
        if "@" in address:
            return address
    return None


def _attached_message_ids(message: Message) -> list[str]:
    """Message-IDs of the returned message (message/rfc822) or of its returned headers
    (text/rfc822-headers), wherever the bounce attached them."""
    ids: list[str] = []
    for part in _walk(message):
        content_type = part.get_content_type()
        if content_type in _EMBEDDED_TYPES:
            payload = part.get_payload()
            embedded = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(embedded, Message):
                ids += _ids_in(_header_values(embedded, "Message-ID"))
            elif isinstance(payload, str):
                ids += _ids_in(_header_values(_headers_of(payload), "Message-ID"))
        elif content_type in _HEADERS_TYPES:
            ids += _ids_in(_header_values(_headers_of(_decoded_text(part)), "Message-ID"))
    return _dedupe(ids)


def _inline_message_ids(message: Message) -> list[str]:
    ids: list[str] = []
    for part in _walk(message):
        if part.get_content_type() == "text/plain":
            ids += _INLINE_MESSAGE_ID.findall(_decoded_text(part))
    return _dedupe(ids)


def _headers_of(text: str) -> Message:
    # The header block only: a returned message's body is none of our business.
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    return HeaderParser().parsestr(head[:MAX_SCAN_BYTES] + "\n")


# -- Robust reading ----------------------------------------------------------------------------


def _walk(message: Message) -> Iterator[Message]:
    """The message and its MIME parts, breadth first, at most MAX_PARTS of them, without
    entering attached messages. Iterative, so deep nesting cannot exhaust the stack."""
    queue = [message]
    seen = 0
    while queue and seen < MAX_PARTS:
        part = queue.pop(0)
        seen += 1
        yield part
        if part.get_content_type() not in _EMBEDDED_TYPES:
            queue.extend(_children(part)[: MAX_PARTS - seen])


def _children(part: Message) -> list[Message]:
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload[:MAX_PARTS] if isinstance(child, Message)]


def _has_header(message: Message, name: str) -> bool:
    try:
        return name in message
    except Exception:
        return False


def _header_values(message: Message, *names: str) -> list[str]:
    """Every non-empty value of the named headers, decoded to text. A header the policy
    cannot parse is read raw rather than dropped."""
    values: list[str] = []
    for name in names:
        try:
            raw_values = message.get_all(name) or []
        except Exception:
            raw_values = [v for k, v in message.raw_items() if k.lower() == name.lower()]
        for raw in raw_values:
            text = _text(raw).strip()
            if text:
                values.append(text)
    return values


def _text(value: object) -> str:
    """A header value as text, RFC 2047 encoded words decoded; an unknown charset falls back
    to Latin-1 (every byte is a character) instead of raising."""
    try:
        chunks = decode_header(value if isinstance(value, Header) else str(value))
    except Exception:
        return str(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", errors="replace"))
        except LookupError:
            out.append(chunk.decode("latin-1"))
    return "".join(out)


def _decoded_text(part: Message) -> str:
    """A text part's content, transfer-decoded, at most MAX_SCAN_BYTES of it."""
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload[:MAX_SCAN_BYTES] if isinstance(payload, str) else ""
    raw = raw[:MAX_SCAN_BYTES]
    try:
        return raw.decode(part.get_content_charset() or "ascii", errors="replace")
    except LookupError:
        return raw.decode("latin-1")


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    if value is None:
        return ""
    return str(collapse_rfc2231_value(value)).strip()


def _ids_in(values: list[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        found = _ANGLE_ID.findall(value)
        if found:
            ids += [f"<{found_id}>" for found_id in found]
        elif "@" in value and not any(c.isspace() for c in value.strip()):
            ids.append(f"<{value.strip()}>")  # a bare id some MTAs write without brackets
    return ids


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
