"""What the apps above messaging add to a thread, registered in their AppConfig.ready(), so
that messaging imports none of them (tests/test_import_cycles.py keeps it so).

- Append subscribers (`subscribe_to_appends`): `messaging.actions` calls each
  `subscriber(entry=..., customer=...)` for every append made with `notify=True`, inside the
  append's transaction. What a subscriber writes commits or rolls back with the entry —
  notifications writes the entry's Delivery rows this way (invariant 7) — and any side effect
  it has it registers on commit itself. A subscriber that raises rolls the append back.
- Read subscribers (`subscribe_to_reads`): `messaging.actions.mark_read` calls each
  `subscriber(thread=..., side=..., up_to_seq=..., at=...)` when a side's read watermark
  moves forward, inside mark_read's transaction, with the same rules as append subscribers
  (crm_events: the `conversation.read` event to the CRM).
- Transcript parts (`add_transcript_part`): what an app adds to each entry of a transcript
  (notifications: its delivery receipts; crm_events: the document a card names), loaded one
  chunk of entries at a time.
- Staff badges (`add_staff_badge`): something shown under each entry in staff timelines
  (notifications: what became of the entry's deliveries), with the prefetch that loads it for
  a whole page in one query and the state the cached entry HTML is keyed on.

Django's own wiring works the same way (apps register with admin, checks, signals); the
registries are filled once per process, and registering again (ready() may run twice in tests)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.models import Prefetch

    from messaging.models import Entry

# subscriber(*, entry, customer); what it returns is ignored.
AppendSubscriber = Callable[..., object]

_append_subscribers: list[AppendSubscriber] = []


def subscribe_to_appends(subscriber: AppendSubscriber) -> None:
    """Call `subscriber(entry=..., customer=...)` inside every append that notifies."""
    if subscriber not in _append_subscribers:
        _append_subscribers.append(subscriber)


def appended(*, entry: Entry, customer) -> None:
    """For `messaging.actions` only: an entry was appended, and people are to be told."""
    for subscriber in _append_subscribers:
        subscriber(entry=entry, customer=customer)


# subscriber(*, thread, side, up_to_seq, at); what it returns is ignored.
ReadSubscriber = Callable[..., object]

_read_subscribers: list[ReadSubscriber] = []


def subscribe_to_reads(subscriber: ReadSubscriber) -> None:
    """Call `subscriber(thread=..., side=..., up_to_seq=..., at=...)` inside every read mark
    that moves a watermark forward."""
    if subscriber not in _read_subscribers:
        _read_subscribers.append(subscriber)


def read(*, thread, side: str, up_to_seq: int, at) -> None:
    """For `messaging.actions.mark_read` only: `side` has now read `thread` up to `up_to_seq`."""
    for subscriber in _read_subscribers:
        subscriber(thread=thread, side=side, up_to_seq=up_to_seq, at=at)


@dataclass(frozen=True)
class StaffBadge:
    # Included under each entry of a staff timeline, with the entry's context.
    template: str
    # Loads what the template shows for a page of entries in one query (no query per entry).
    prefetch: Callable[[], Prefetch]
    # Everything the template shows of one entry: part of that entry's cache key
    # (messaging/rendering.py), so a change re-renders it.
    state: Callable[[Entry], tuple]


_staff_badges: dict[str, StaffBadge] = {}


def add_staff_badge(badge: StaffBadge) -> None:
    _staff_badges[badge.template] = badge


def staff_badges() -> list[StaffBadge]:
    return list(_staff_badges.values())


@dataclass(frozen=True)
class TranscriptPart:
    # The key it fills in each entry's record of a transcript (messaging/transcripts.py).
    key: str
    # load(entries, *, staff, zone) -> {entry.pk: JSON-ready value} for one chunk of entries,
    # in a fixed number of queries (one a chunk, not one an entry). `staff` is False for the
    # customer's copy: what the part returns then must be fit for the customer to read.
    load: Callable[..., dict[int, object]]


_transcript_parts: dict[str, TranscriptPart] = {}


def add_transcript_part(part: TranscriptPart) -> None:
    _transcript_parts[part.key] = part


def transcript_parts() -> list[TranscriptPart]:
    return sorted(_transcript_parts.values(), key=lambda part: part.key)
