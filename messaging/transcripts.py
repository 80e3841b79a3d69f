"""Transcripts: a thread's whole record as canonical JSON and as PDF, streamed.

One generator of entry records (`records`) feeds both: the JSON is those records written
canonically (sorted keys, fixed separators, UTF-8), so its bytes depend only on the thread's
state and the options, and its SHA-256, computed by streaming the same bytes through hashlib,
is printed in the PDF. Entries are read in keyset chunks of CHUNK (`seq > last`, on the
(thread, seq) unique index), each chunk with its attachments and the apps' parts (receipts,
documents) loaded in a fixed number of queries: no query per entry, and never a list of the
whole thread. A server-side cursor (`.iterator()`) is not used: under ASGI each chunk is
fetched in its own hop to the shared sync thread, between which other requests' ends may
close the connection a cursor lives on.

Audience (invariant 3): the customer's copy reads entries through `for_customer()` (no
internal notes, transcripts never loaded), lists only the notifications sent to the
customer, with the recipient masked, and staff-only attachments not at all. The staff copy
includes internal notes and call transcripts unless asked not to (`include_staff_only`), and
says which in both formats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from messaging import extensions
from messaging.models import Attachment, Entry, ReadMark, Thread
from messaging.pdf_stream import PageComposer, PdfWriter
from messaging.queries import first_mark_reaching, reader_of

FORMAT = "porchlight-transcript/1"
CHUNK = 500


@dataclass(frozen=True)
class Transcript:
    """What a transcript is of: a thread, for whom, up to which entry."""

    thread: Thread
    staff: bool
    include_staff_only: bool
    up_to: int

    @property
    def customer(self):
        return self.thread.customer

    @property
    def business(self):
        return self.thread.customer.business

    @property
    def zone(self) -> str:
        # Staff read in the business's time zone, the customer in their own (as on pages).
        return self.business.time_zone if self.staff else self.customer.time_zone

    def url(self, extension: str) -> str:
        """The URL of this very transcript (same entries, same options) as .json or .pdf."""
        if self.staff:
            path = reverse(f"staff_transcript_{extension}", args=[self.thread.pk])
            only = "" if self.include_staff_only else "&include_staff_only=0"
        else:
            path, only = reverse(f"customer_transcript_{extension}"), ""
        return f"{path}?up_to={self.up_to}{only}"


def transcript_for(
    *, thread: Thread, staff: bool, include_staff_only: bool = True, up_to: int | None = None
) -> Transcript:
    """A transcript up to `up_to` (the thread's last entry when not given, or when beyond)."""
    last = thread.last_seq
    return Transcript(
        thread=thread,
        staff=staff,
        include_staff_only=staff and include_staff_only,
        up_to=last if up_to is None else min(up_to, last),
    )


def seen_times(thread: Thread) -> Callable[[Entry], dt.datetime | None]:
    """When each entry was seen in the portal by the side it was for: the one place that
    knows how "seen" is stored (read marks: each side's watermark as it moved, with its
    time). The thread's marks are loaded once, one per read, not one per entry. As on the
    page, a text is never "seen": its receipt is the carrier's."""
    marks: dict[str, list[tuple[int, dt.datetime]]] = {}
    for side, up_to_seq, at in (
        ReadMark.objects.filter(thread=thread).order_by("side", "up_to_seq")
        .values_list("side", "up_to_seq", "at")
    ):  # fmt: skip
        marks.setdefault(side, []).append((up_to_seq, at))

    def seen(entry: Entry) -> dt.datetime | None:
        side = reader_of(entry)
        if entry.channel == Entry.Channel.SMS or side is None:
            return None
        return first_mark_reaching(marks.get(side, []), entry.seq)

    return seen


# -- records ---------------------------------------------------------------------------------


def _chunks(transcript: Transcript) -> Iterator[list[Entry]]:
    entries = Entry.objects.filter(thread=transcript.thread, seq__lte=transcript.up_to)
    if not transcript.include_staff_only:
        entries = entries.for_customer()
    entries = entries.select_related("author", "project").order_by("seq")
    last = 0
    while chunk := list(entries.filter(seq__gt=last)[:CHUNK]):
        yield chunk
        last = chunk[-1].seq


def _files(chunk: list[Entry], transcript: Transcript) -> dict[int, list[dict]]:
    """The chunk's attachments by entry, in one query, only when some entry has files.
    Plain dicts rather than prefetch_related: a prefetch leaves a queryset on each entry that
    points back at it, cycles only the garbage collector frees, so memory would pile up
    across chunks until it ran."""
    ids = [entry.pk for entry in chunk if entry.attachment_count]
    if not ids:
        return {}
    files = Attachment.objects.filter(entry_id__in=ids).order_by("pk")
    if not transcript.staff:
        files = files.filter(staff_only=False)
    found: dict[int, list[dict]] = {}
    for entry_id, name, size, content_type, sha256 in files.values_list(
        "entry_id", "name", "size", "content_type", "sha256"
    ):
        found.setdefault(entry_id, []).append(
            {"name": name, "size": size, "content_type": content_type, "sha256": sha256 or None}
        )
    return found


def iso(value: dt.datetime | None, zone: str) -> str | None:
    if value is None:
        return None
    return timezone.localtime(value, zoneinfo.ZoneInfo(zone)).isoformat(timespec="seconds")


def _author(entry: Entry, transcript: Transcript) -> str:
    if entry.kind == Entry.Kind.CUSTOMER_REPLY:
        return transcript.customer.name
    business = transcript.business.name
    if transcript.staff and entry.author is not None:
        return entry.author.get_full_name() or entry.author.get_username()
    return business


def _record(entry: Entry, transcript: Transcript, seen, files: list[dict]) -> dict:
    zone = transcript.zone
    record: dict = {
        "seq": entry.seq,
        "kind": entry.kind,
        "channel": entry.channel,
        "at": iso(entry.created_at, zone),
        "from": "customer" if entry.kind == Entry.Kind.CUSTOMER_REPLY else "business",
        "author": _author(entry, transcript),
        "body": entry.body,
        "urgent": entry.urgent,
        "project": entry.project.code if entry.project else None,
        "seen_in_portal_at": iso(seen(entry), zone),
        "attachments": files,
    }
    if entry.kind == Entry.Kind.EVENT_CARD:
        record["card"] = {"kind": entry.card_kind, "link": entry.link_url}
    if entry.kind == Entry.Kind.CALL:
        record["call"] = {
            "started_at": iso(entry.call_started_at, zone),
            "duration_seconds": entry.call_duration_seconds,
        }
        if transcript.include_staff_only:
            record["call"]["transcript"] = entry.transcript
    return record


def records(transcript: Transcript) -> Iterator[list[dict]]:
    """The transcript's entries as JSON-ready records, one chunk at a time, in order."""
    seen = seen_times(transcript.thread)
    parts = extensions.transcript_parts()
    for chunk in _chunks(transcript):
        files = _files(chunk, transcript)
        loaded = [
            (part.key, part.load(chunk, staff=transcript.staff, zone=transcript.zone))
            for part in parts
        ]
        out = []
        for entry in chunk:
            record = _record(entry, transcript, seen, files.get(entry.pk, []))
            for key, values in loaded:
                if entry.pk in values:
                    record[key] = values[entry.pk]
            out.append(record)
        yield out


# -- JSON ------------------------------------------------------------------------------------


def canonical(value: object) -> bytes:
    """The one way a transcript writes JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def header(transcript: Transcript) -> dict:
    return {
        "format": FORMAT,
        "thread": transcript.thread.pk,
        "business": transcript.business.name,
        "customer": transcript.customer.name,
        "copy": "staff" if transcript.staff else "customer",
        "includes_staff_only": transcript.include_staff_only,
        "time_zone": transcript.zone,
        "up_to_seq": transcript.up_to,
    }


def json_chunks(transcript: Transcript) -> Iterator[bytes]:
    """The canonical JSON, in pieces: the header's keys and "entries" in sorted order, the
    entries streamed in between. Equal to `canonical()` of the whole object, byte for byte."""
    fields = header(transcript)
    fields["entries"] = None  # its place in the key order
    yield b"{"
    for index, key in enumerate(sorted(fields)):
        yield (b"," if index else b"") + canonical(key) + b":"
        if key != "entries":
            yield canonical(fields[key])
            continue
        yield b"["
        first = True
        for chunk in records(transcript):
            body = b",".join(canonical(record) for record in chunk)
            yield body if first else b"," + body
            first = False
        yield b"]"
    yield b"}"


def json_sha256(transcript: Transcript) -> str:
    digest = hashlib.sha256()
    for piece in json_chunks(transcript):
        digest.update(piece)
    return digest.hexdigest()


# -- PDF -------------------------------------------------------------------------------------


def _when(value: str | None) -> str:
    # Records carry local ISO times; the PDF writes them as pages do ("Tue May 13, 2026
    # 8:02am"), by hand: dateformat was the PDF pass's largest cost.
    if value is None:
        return ""
    moment = dt.datetime.fromisoformat(value)
    hour = moment.hour % 12 or 12
    noon = "am" if moment.hour < 12 else "pm"
    day = f"{DAYS[moment.weekday()]} {MONTHS[moment.month - 1]} {moment.day}, {moment.year}"
    return f"{day} {hour}:{moment.minute:02d}{noon}"


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _duration(seconds: int | None) -> str:
    if not seconds:
        return "under a minute"
    minutes = max(round(seconds / 60), 1)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


KIND_LABELS = {
    Entry.Kind.STAFF_MESSAGE: "Message",
    Entry.Kind.AUTOMATED: "Automated message",
    Entry.Kind.CUSTOMER_REPLY: "Reply",
    Entry.Kind.EVENT_CARD: "Update",
    Entry.Kind.CALL: "Phone call",
    Entry.Kind.INTERNAL_NOTE: "Internal note (staff only)",
}
CHANNEL_LABELS = dict(Entry.Channel.choices)


def _document_line(document: dict) -> str:
    """ "Invoice #2041 · total 4200.00 USD · sent", "Appointment · Deck install · starts …"."""
    number = f" #{document['number']}" if document.get("number") else ""
    bits = [f"{document['type'].title()}{number}"]
    if document.get("title"):
        bits.append(document["title"])
    if document.get("starts_at"):
        bits.append(f"starts {_when(document['starts_at'])}")
    if document.get("total") is not None:
        bits.append(f"total {document['total']} {document['currency']}")
    bits.append(document["status"])
    return " · ".join(bits)


def _entry_lines(record: dict) -> Iterator[tuple[str, dict]]:
    """What the PDF prints of one record, as (text, style) lines."""
    head = " · ".join(
        x
        for x in (
            f"#{record['seq']}",
            _when(record["at"]),
            CHANNEL_LABELS.get(record["channel"], record["channel"]),
            KIND_LABELS.get(record["kind"], record["kind"]),
            record["author"],
            "Urgent" if record["urgent"] else "",
            f"Project {record['project']}" if record["project"] else "",
        )
        if x
    )
    yield head, {"font": "bold", "size": 9, "space_before": 7, "keep_lines": 2}
    if record["body"]:
        yield record["body"], {"indent": 12}
    card = record.get("card")
    if card:
        document = record.get("document")
        if document:
            yield _document_line(document), {"indent": 12, "size": 9}
        if card["link"]:
            yield f"Link: {card['link']}", {"indent": 12, "size": 9, "grey": 0.35}
    call = record.get("call")
    if call:
        yield (
            f"Call started {_when(call['started_at'])} · {_duration(call['duration_seconds'])}",
            {"indent": 12, "size": 9},
        )
        if call.get("transcript"):
            yield f"Transcript (staff only): {call['transcript']}", {"indent": 12, "size": 9}
    for a in record["attachments"]:
        yield (
            f"Attachment: {a['name']} · {_size(a['size'])} · {a['content_type']} · "
            f"SHA-256 {a['sha256'] or 'not recorded'}",
            {"indent": 12, "size": 8},
        )
    for receipt in record.get("receipts", ()):
        times = [
            f"{label} {_when(receipt[key])}"
            for key, label in (
                ("queued_at", "queued"),
                ("sent_at", "sent"),
                ("delivered_at", "delivered"),
                ("failed_at", "failed"),
            )
            if receipt.get(key)
        ]
        reason = f" ({receipt['error']})" if receipt.get("error") else ""
        channel = "SMS" if receipt["channel"] == "sms" else receipt["channel"].title()
        yield (
            f"{channel} to {receipt['recipient']}: {receipt['status']}{reason}"
            + (" · " + ", ".join(times) if times else ""),
            {"indent": 12, "size": 8, "grey": 0.3},
        )
    if record["seen_in_portal_at"]:
        yield (
            f"Seen in the portal {_when(record['seen_in_portal_at'])}",
            {"indent": 12, "size": 8, "grey": 0.3},
        )


def pdf_chunks(
    transcript: Transcript, *, json_sha256: str | None, generated_at: dt.datetime
) -> Iterator[bytes]:
    """The transcript as PDF, page by page. It names its JSON twin and that twin's SHA-256,
    which, when not given, it first computes by streaming the twin through hashlib: after
    the file's first bytes, so a client (or a proxy) hears from the server at once."""
    business, customer = transcript.business, transcript.customer
    writer = PdfWriter(title=f"Conversation with {business.name}", author=business.name)
    composer = PageComposer(
        writer, footer=f"{business.name} · {customer.name} · up to entry {transcript.up_to} ·"
    )
    yield writer.start()
    if json_sha256 is None:
        digest = hashlib.sha256()
        for piece in json_chunks(transcript):
            digest.update(piece)
            yield b""  # a step of the hash pass (messaging.views._streamed)
        json_sha256 = digest.hexdigest()
    if transcript.staff:
        scope = (
            "Includes internal notes and call transcripts (staff only)."
            if transcript.include_staff_only
            else "Does not include internal notes or call transcripts."
        )
    else:
        scope = "Every message, update and call in your conversation."
    intro = [
        (business.name, {"font": "bold", "size": 16}),
        (f"Conversation with {customer.name}", {"font": "bold", "size": 12}),
        (scope, {"size": 10}),
        (
            f"Up to entry {transcript.up_to}. Times in {transcript.zone}. "
            f"Made {_when(iso(generated_at, transcript.zone))}.",
            {"size": 9, "grey": 0.3},
        ),
        (f"JSON of this transcript: {transcript.url('json')}", {"size": 8, "space_before": 4}),
        (f"SHA-256 of that JSON: {json_sha256}", {"size": 8}),
        (
            "To check a saved copy: sha256sum transcript.json (it must print the hash above).",
            {"size": 8, "grey": 0.3},
        ),
    ]
    for text, style in intro:
        yield from composer.add(text, **style)
    count = 0
    for chunk in records(transcript):
        yield b""  # a chunk boundary (messaging.views._streamed)
        for record in chunk:
            count += 1
            for text, style in _entry_lines(record):
                yield from composer.add(text, **style)
    if not count:
        yield from composer.add("No entries yet.", space_before=8)
    yield from composer.close()
    yield writer.finish()


def pdf_with_hash(transcript: Transcript, *, generated_at: dt.datetime) -> Iterator[bytes]:
    """The PDF, its JSON twin hashed on the way (two passes over the entries, neither held)."""
    return pdf_chunks(transcript, json_sha256=None, generated_at=generated_at)
