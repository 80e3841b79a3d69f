"""Reading an inbound email (an `email.message.Message`, as anymail parses it): who sent it,
to which of our addresses, its id, its visible text and its files. Pure and forgiving: a
mangled message, an unknown charset or a bomb of HTML gives what can be read, never an
exception.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

import idna

from notifications.inbound.reply_text import html_to_text, visible_reply

# More text than this is not what a person wrote above a quote; the rest is ignored.
MAX_TEXT_BYTES = 1024 * 1024
# Of one header we read at most this much (a real To of 50 people is about 2 KB; a References
# header of 160 ids 8 KB): the email package's parsers cost more than linear time on huge
# address lists (issue 18: a 1.8 MB To kept a web process busy seven minutes).
MAX_HEADER_CHARS = 8 * 1024
# Addresses an email is taken to be sent to: its envelope recipient first, then To, Cc...
MAX_RECIPIENTS = 50
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


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
    """An address as we compare them, exactly: its addr-spec with the domain in IDNA 2008
    ASCII form, lower case, and the local part with only A-Z lowered. Never case-folded or
    Unicode-lowered: "ſarah@example.com" (long s) folds to sarah's address, and the Kelvin
    sign lowers to "k". "" for anything that is not an address (no @, a domain IDNA refuses).
    """
    spec = parseaddr(address or "")[1].strip()
    local, at, domain = spec.rpartition("@")
    domain = _ascii_domain(domain)
    if not (at and local and domain):
        return ""
    return f"{local.translate(_ASCII_UPPER)}@{domain}"


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain.translate(_ASCII_UPPER)
    try:
        # IDNA 2008 without UTS 46 mapping: a mapping would turn "ſ" into "s" again.
        return idna.encode(domain.lower()).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return ""


def _raw_header(message: Message, name: str) -> str:
    """The first `name` header as stored, unparsed (reading is cheap; parsing is not)."""
    wanted = name.lower()
    try:
        for key, value in message.raw_items():
            if key.lower() == wanted:
                return value
    except Exception:  # noqa: BLE001, S110 - a message we cannot read has no such header
        pass
    return ""


def _raw_8bit_header(message: Message, name: str) -> str:
    """A header sent as raw 8-bit bytes instead of RFC 2047 words, decoded: UTF-8 when the
    bytes are UTF-8, else Windows-1252 (what Outlook and old clients send; a superset of
    Latin-1 for text). The email package keeps such bytes as surrogates and hands out
    replacement characters. "" when the header is not raw 8-bit."""
    for key, value in message.raw_items():
        if key.lower() != name.lower() or not isinstance(value, str):
            continue
        value = value[:MAX_HEADER_CHARS]
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
    """A header's text, decoded by the message's own policy, of at most MAX_HEADER_CHARS:
    message.get() would first parse the whole value, however large."""
    raw = _raw_header(message, name)
    if not raw:
        return ""
    try:
        if len(raw) <= MAX_HEADER_CHARS:
            value = str(message.get(name) or "")
        else:
            value = str(message.policy.header_fetch_parse(name, str(raw)[:MAX_HEADER_CHARS]))
        if "\ufffd" in value:
            value = _raw_8bit_header(message, name)[:MAX_HEADER_CHARS] or value
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
    """The addresses it was sent to, at most MAX_RECIPIENTS: the envelope recipient the
    provider reports first (the one it surely came to), then Delivered-To, X-Original-To, To
    and Cc. Linear in what is read, which is bounded."""
    names = ("Delivered-To", "X-Original-To", "To", "Cc")
    values = [v[:MAX_HEADER_CHARS] for v in extra] + [header(message, n) for n in names]
    found: dict[str, None] = {}
    for _, address in getaddresses(values):
        normalised = normalise_address(f"<{address}>") if address else ""
        if normalised:
            found[normalised] = None
            if len(found) >= MAX_RECIPIENTS:
                break
    return list(found)


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


# -- whether the sender's domain vouches for the From address ----------------------------------


@dataclass(frozen=True)
class Authentication:
    """What the email provider's SPF and DKIM checks say of the From address: "pass" (SPF
    passed for an envelope domain aligned with the From's, or a valid DKIM signature of the
    From's domain), "fail" (the provider checked, and neither holds: a From anyone could have
    written), or "none" (the provider gave no verdict)."""

    verdict: str
    reason: str = ""


NO_VERDICT = Authentication("none", "the email provider gave no SPF/DKIM verdict")
_SPF_TESTS = {
    "SPF_PASS": "pass",
    "SPF_FAIL": "fail",
    "SPF_SOFTFAIL": "softfail",
    "SPF_NEUTRAL": "neutral",
    "SPF_NONE": "none",
}
_ENVELOPE_FROM = re.compile(r"envelope-from=\"?<?([^\s\";>]+)", re.IGNORECASE)


def authentication(
    *, headers: list[tuple[str, str]], envelope_sender: str, sender: str
) -> Authentication:
    """The verdict of the provider's own headers (Postmark's, which it puts before the
    message's own, so the first of each name is the provider's): Received-SPF
    ("Pass (sender SPF authorized) identity=mailfrom; … envelope-from=…") and SpamAssassin's
    X-Spam-Tests (SPF_PASS, DKIM_VALID_AU: "valid signature from the author's domain").
    SPF alone checks the envelope sender, which a forger chooses: it counts only when that
    domain is the From's (or one is a subdomain of the other), as DMARC aligns it."""
    first: dict[str, str] = {}
    for name, value in headers[:50]:
        first.setdefault(str(name).lower(), str(value)[:MAX_HEADER_CHARS])
    received_spf, tests = first.get("received-spf"), first.get("x-spam-tests")
    if received_spf is None and tests is None:
        return NO_VERDICT
    tokens = set(re.split(r"[\s,]+", (tests or "").upper()))
    domain = normalise_address(sender).rpartition("@")[2]
    if "DKIM_VALID_AU" in tokens and domain:
        return Authentication("pass", f"a valid DKIM signature of {domain}")
    if received_spf is not None:
        spf = (received_spf.split(None, 1) or [""])[0].lower()
        found = _ENVELOPE_FROM.search(received_spf)
        envelope = found.group(1) if found else envelope_sender
    else:
        spf = next((result for test, result in _SPF_TESTS.items() if test in tokens), "")
        envelope = envelope_sender
    envelope_domain = normalise_address(f"<{envelope}>").rpartition("@")[2]
    if spf == "pass" and domain and _aligned(envelope_domain, domain):
        return Authentication("pass", f"SPF passed for {envelope_domain}")
    return Authentication(
        "fail",
        f"SPF {spf or 'unknown'} for {envelope_domain or 'an empty envelope sender'} and no "
        f"valid DKIM signature of {domain or 'the sender'}",
    )


def _aligned(one: str, other: str) -> bool:
    if not one or "." not in one or "." not in other:
        return False
    return one == other or one.endswith(f".{other}") or other.endswith(f".{one}")
