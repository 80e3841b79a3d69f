"""Bounding what an inbound email payload asks us to parse, before anymail parses it.

anymail builds an `email.message.Message` from the ESP's payload, and the standard library's
header parsers cost far more than linear time on huge values: a To of 100,000 addresses
(1.8 MB) kept a web process busy about seven minutes (issue 18). The payload is bounded here,
in linear time, so that what anymail and we read afterwards is small whatever was sent:

- at most MAX_ADDRESSES entries of each address list (Postmark's ToFull, CcFull, BccFull),
  each address and name cut short. The envelope recipient (OriginalRecipient) is kept as is:
  it is the address the mail surely came to, so a reply is still matched;
- at most MAX_HEADERS headers of at most MAX_HEADER_CHARS each, MAX_HEADER_BYTES in all, in
  the Headers list and in the header block of RawEmail (the body is left alone: its size is
  INBOUND_EMAIL_MAX_BYTES's business). Headers past those limits are dropped; the first ones
  (the ESP's own: Return-Path, its Received and spam verdicts) are always kept.

Only Postmark's JSON is known here; any other ESP's payload passes unchanged.
"""

from __future__ import annotations

import json
import re

from notifications.inbound.inbound_mail import MAX_HEADER_CHARS, MAX_RECIPIENTS

MAX_ADDRESSES = MAX_RECIPIENTS
MAX_HEADERS = 200
MAX_HEADER_BYTES = 256 * 1024
_ADDRESS_CHARS, _NAME_CHARS, _SUBJECT_CHARS = 320, 200, 1000
_HEADER_END = re.compile(r"\r?\n\r?\n")
_LINE = re.compile(r"[^\n]*\n?")


def bound(esp: str, body: bytes) -> bytes:
    """`body` with its headers and address lists bounded (unchanged when already within
    the limits, or when it is not a payload we know: anymail then answers for it)."""
    if esp != "postmark":
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    changed = False
    for key in ("ToFull", "CcFull", "BccFull"):
        value = data.get(key)
        if isinstance(value, list):
            kept = [_address(entry) for entry in value[:MAX_ADDRESSES]]
            changed |= kept != value
            data[key] = kept
    for key, limit in (("To", MAX_HEADER_CHARS), ("Cc", MAX_HEADER_CHARS), ("Bcc", 320)):
        changed |= _cut(data, key, limit)
    changed |= _cut(data, "Subject", _SUBJECT_CHARS)
    if isinstance(data.get("FromFull"), dict):
        kept = _address(data["FromFull"])
        changed |= kept != data["FromFull"]
        data["FromFull"] = kept
    if isinstance(data.get("Headers"), list):
        kept = _headers_list(data["Headers"])
        changed |= kept != data["Headers"]
        data["Headers"] = kept
    if isinstance(data.get("RawEmail"), str):
        kept = bound_raw_headers(data["RawEmail"])
        changed |= kept is not data["RawEmail"]
        data["RawEmail"] = kept
    return json.dumps(data).encode() if changed else body


def _cut(data: dict, key: str, limit: int) -> bool:
    value = data.get(key)
    if isinstance(value, str) and len(value) > limit:
        data[key] = value[:limit]
        return True
    return False


def _address(entry):
    if not isinstance(entry, dict):
        return entry  # anymail refuses a wrong shape (400), as before
    kept = dict(entry)
    for key, limit in (("Email", _ADDRESS_CHARS), ("Name", _NAME_CHARS)):
        if isinstance(kept.get(key), str):
            kept[key] = kept[key][:limit]
    return kept


def _headers_list(headers: list) -> list:
    kept, total = [], 0
    for header in headers[:MAX_HEADERS]:
        if not isinstance(header, dict):
            kept.append(header)
            continue
        value = header.get("Value")
        if isinstance(value, str) and len(value) > MAX_HEADER_CHARS:
            header = {**header, "Value": value[:MAX_HEADER_CHARS]}
            value = header["Value"]
        total += len(value) if isinstance(value, str) else 0
        if total > MAX_HEADER_BYTES:
            break
        kept.append(header)
    return kept


def bound_raw_headers(raw: str) -> str:
    """A raw message with its header block bounded like the Headers list; the same object
    when nothing had to change."""
    end = _HEADER_END.search(raw)
    head, rest = (raw[: end.start()], raw[end.start() :]) if end else (raw, "")
    if len(head) <= MAX_HEADER_BYTES and head.count("\n") < MAX_HEADERS * 4:
        fields = None  # small enough to need no look at each field
    else:
        fields = _fields(head)
    if fields is None:
        return raw
    kept, total = [], 0
    for field in fields[:MAX_HEADERS]:
        field = field[:MAX_HEADER_CHARS].rstrip("\r\n")
        total += len(field)
        if total > MAX_HEADER_BYTES:
            break
        kept.append(field)
    return "\r\n".join(kept) + rest


def _fields(head: str) -> list[str]:
    """The header fields of a header block, each with its folded continuation lines. Stops
    reading lines once MAX_HEADERS fields are complete, so a header block of millions of
    lines costs no more than the first few hundred fields."""
    fields: list[str] = []
    current: list[str] = []
    size = 0
    for match in _LINE.finditer(head):
        line = match.group()
        if not line:
            break
        if line[:1] in (" ", "\t") and current:
            if size <= MAX_HEADER_CHARS:  # the rest of a huge field is never read
                current.append(line)
                size += len(line)
            continue
        if current:
            fields.append("".join(current))
            if len(fields) >= MAX_HEADERS:
                return fields
        current, size = [line], len(line)
    if current:
        fields.append("".join(current))
    return fields
