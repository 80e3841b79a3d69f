"""Reading an inbound email (an `email.message.Message`, as anymail parses it): who sent it,
to which of our addresses, its id, its visible text and its files. Pure and forgiving: a
mangled message, an unknown charset or a bomb of HTML gives what can be read, never an
exception.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from notifications.inbound.reply_text import html_to_text, visible_reply

# More text than this is not what a person wrote above a quote; the rest is ignored.
MAX_TEXT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class MailFile:
    name: str
    content_type: str
    data: bytes


def printable(text: str) -> str:
    """Text as we store it: without NUL and the other control characters (tabs and line
    ends kept), which mangled mail carries and databases refuse."""
    return "".join(c for c in text if c >= " " or c in "\t\n\r")


def normalise_address(address: str) -> str:
    """An address as we compare them: its addr-spec, trimmed, case-folded."""
    return parseaddr(address or "")[1].strip().casefold()


def _raw_8bit_header(message: Message, name: str) -> str:
    """A header sent as raw 8-bit bytes instead of RFC 2047 words, decoded: UTF-8 when the
    bytes are UTF-8, else Windows-1252 (what Outlook and old clients send; a superset of
    Latin-1 for text). The email package keeps such bytes as surrogates and hands out
    replacement characters. "" when the header is not raw 8-bit."""
    for key, value in message.raw_items():
        if key.lower() != name.lower() or not isinstance(value, str):
            continue
        if not any("\udc80" <= c <= "\udcff" for c in value):
            return ""
        data = value.encode("utf-8", "surrogateescape")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        return " ".join(text.split())  # unfolded, as the parsed header would be
    return ""


def header(message: Message, name: str) -> str:
    try:
        value = str(message.get(name) or "")
        if "\ufffd" in value:
            value = _raw_8bit_header(message, name) or value
        return printable(value)
    except Exception:  # noqa: BLE001 - a header we cannot decode reads as absent
        return ""


def sender(message: Message) -> str:
    return normalise_address(header(message, "From"))


def message_id(message: Message) -> str:
    """The Message-ID, as "<…>", or "" when there is none."""
    value = "".join(header(message, "Message-ID").split())
    if not value:
        return ""
    return value if value.startswith("<") else f"<{value.strip('<>')}>"


def recipients(message: Message, *extra: str) -> list[str]:
    """Every address it was sent to: To, Cc, Delivered-To, X-Original-To, and the envelope
    recipient the provider reports."""
    values = [header(message, name) for name in ("To", "Cc", "Delivered-To", "X-Original-To")]
    found = [normalise_address(f"<{a}>") for _, a in getaddresses([*values, *extra]) if a]
    return list(dict.fromkeys(a for a in found if a))


def _decoded(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001 - mangled transfer encoding
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"  # an unknown charset: most mail is UTF-8 or ASCII anyway
    return printable(payload[:MAX_TEXT_BYTES].decode(charset, errors="replace"))


def _is_file(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "attachment" or (disposition == "inline" and bool(part.get_filename()))


def _parts(message: Message, limit: int = 500):
    try:
        for count, part in enumerate(message.walk()):
            if count >= limit:
                return
            if not part.is_multipart():
                yield part
    except Exception:  # noqa: BLE001 - a broken structure yields what was read
        return


def full_text(message: Message) -> str:
    """The message's own text: its first text/plain part, or its HTML as text."""
    html = ""
    for part in _parts(message):
        if _is_file(part):
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and (text := _decoded(part)).strip():
            return text
        if kind == "text/html" and not html:
            html = _decoded(part)
    return html_to_text(html) if html else ""


def visible_text(message: Message) -> str:
    """What the sender newly wrote: quoted history, reply headers and signatures removed."""
    return visible_reply(full_text(message))


def files(message: Message) -> list[MailFile]:
    found = []
    for part in _parts(message):
        if not _is_file(part):
            continue
        try:
            data = part.get_payload(decode=True) or b""
            name = part.get_filename() or ""
        except Exception:  # noqa: BLE001, S112 - an attachment we cannot decode is left out
            continue
        if isinstance(data, bytes):
            found.append(
                MailFile(
                    name=printable(str(name))[:200],
                    content_type=printable(part.get_content_type()),
                    data=data,
                )
            )
    return found
