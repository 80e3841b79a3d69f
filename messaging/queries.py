"""Reads of threads: timeline pages, search, unread counts. Every function here runs a fixed
number of queries whatever the thread's length (see tests/test_query_counts.py)."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVectorField
from django.core.signing import BadSignature, TimestampSigner
from django.db import connection
from django.db.models import F, Q, QuerySet, TextField, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from messaging import extensions
from messaging.models import INBOUND_KINDS, Attachment, Entry, ReadMark, Side, Thread
from portal.models import Project

PAGE_SIZE = 50

# On PostgreSQL each entry's body as a tsvector, stored and GIN-indexed by the database
# (migration 0008): a column the model does not know, reached here by name.
SEARCH_DOCUMENT = RawSQL(
    '"messaging_entry"."search_document"', [], output_field=SearchVectorField()
)
# The same for call transcripts (migration 0011), which only staff search reads.
TRANSCRIPT_DOCUMENT = RawSQL(
    '"messaging_entry"."transcript_document"', [], output_field=SearchVectorField()
)
# Each entry's adjacent word pairs ("saw thank"), stored and GIN-indexed (migration 0016):
# what finds a phrase without rechecking every entry that holds its words.
WORD_PAIRS = RawSQL('"messaging_entry"."word_pairs"', [], output_field=ArrayField(TextField()))


@dataclass(frozen=True)
class TimelinePage:
    entries: list[Entry]
    has_earlier: bool
    has_later: bool

    @property
    def first_seq(self) -> int:
        return self.entries[0].seq if self.entries else 0

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq if self.entries else 0


def entries_for(
    *, thread: Thread, audience: Side, project: Project | None = None
) -> QuerySet[Entry]:
    """The entries `audience` may see, with what rendering them needs: staff views name each
    message's author and what other apps show under it (messaging.extensions: what became of
    its notifications); customer views name only the business, so they load neither. With
    `project`, only the entries about it (the chip filter): the thread stays one thread, this
    is a way of looking at it."""
    entries = Entry.objects.filter(thread=thread)
    if project is not None:
        entries = entries.filter(project=project)
    if audience == Side.CUSTOMER:
        return entries.for_customer()
    badges = [badge.prefetch() for badge in extensions.staff_badges()]
    return entries.select_related("author").prefetch_related(*badges)


def load_attachments(entries: list[Entry]) -> list[Entry]:
    """Each entry's attachments, in one query for those that have any (none for a page
    without): on `entry.attachments.all()`."""
    with_files = [e for e in entries if e.attachment_count]
    if with_files:
        prefetch_related_objects(with_files, "attachments")
    return entries


def load_badges(entries: list[Entry]) -> list[Entry]:
    """What staff timelines show under each entry (messaging.extensions' badges), in one
    query per badge for the entries that lack it (an append's own rows are on its entry)."""
    prefetch_related_objects(entries, *(badge.prefetch() for badge in extensions.staff_badges()))
    return entries


def reader_of(entry: Entry) -> Side | None:
    """The side whose reading an entry waits for (None: an entry nobody "reads", such as a
    note or a call marker)."""
    for side, kinds in INBOUND_KINDS.items():
        if entry.kind in kinds:
            return side
    return None


def seen_at(entry: Entry) -> dt.datetime | None:
    """When the side the entry is for read it: the earliest read mark reaching its sequence
    number (marks are appended in order, so the lowest such up_to_seq is also the earliest)."""
    side = reader_of(entry)
    if side is None:
        return None
    mark = (
        ReadMark.objects.filter(thread_id=entry.thread_id, side=side, up_to_seq__gte=entry.seq)
        .order_by("up_to_seq")
        .values_list("at", flat=True)
        .first()
    )
    return mark


def load_seen(
    entries: list[Entry],
    *,
    thread: Thread,
    audience: Side,
    current: bool = True,
    read_seq: int | None = None,
) -> list[Entry]:
    """Each entry's `seen_at` as `audience` is shown it: when the other side read the
    entries `audience` sent. One query, and none when nothing on the page can show "Seen";
    with `current` the thread's watermark is trusted to be fresh enough to tell (a page's
    thread, just loaded; a socket's copy is not), and `read_seq` is that watermark read
    with the entries themselves (`reader_side`)."""
    reader = reader_side(audience)
    if read_seq is not None:
        watermark = read_seq
    else:
        watermark = getattr(thread, f"{reader}_read_seq") if current else None
    waiting = [
        e
        for e in entries
        if e.kind in INBOUND_KINDS[reader] and (watermark is None or e.seq <= watermark)
    ]
    if not waiting:
        return entries
    low, high = waiting[0].seq, waiting[-1].seq
    # Marks' up_to_seq strictly increase, so those from `low` up to and including the first
    # reaching `high` are at most high - low + 1 rows: bounded by the page, not the thread.
    marks = list(
        ReadMark.objects.filter(thread_id=thread.pk, side=reader, up_to_seq__gte=low)
        .order_by("up_to_seq")
        .values_list("up_to_seq", "at")[: high - low + 1]
    )
    for entry in waiting:
        at = first_mark_reaching(marks, entry.seq)
        if at is not None:
            entry.seen_at = at
    return entries


def reader_side(audience: Side) -> Side:
    """The side whose reading `audience` is shown ("Seen" under what `audience` sent)."""
    return Side.STAFF if audience == Side.CUSTOMER else Side.CUSTOMER


def first_mark_reaching(marks: list[tuple[int, dt.datetime]], seq: int) -> dt.datetime | None:
    """When `seq` was read: the time of the first of `marks` ((up_to_seq, at), ordered by
    up_to_seq, which also orders them in time) whose up_to_seq reaches it."""
    i = bisect.bisect_left(marks, seq, key=lambda mark: mark[0])
    return marks[i][1] if i < len(marks) else None


def _mark_day_starts(entries: list[Entry], previous: Entry | None) -> None:
    # A day header goes above the first entry of each local day; `previous` is the entry just
    # before this page, so a page boundary inside a day adds no second header.
    last_day = timezone.localtime(previous.created_at).date() if previous else None
    for entry in entries:
        day = timezone.localtime(entry.created_at).date()
        entry.starts_day = day != last_day
        last_day = day


def timeline_page(
    *,
    thread: Thread,
    audience: Side,
    before_seq: int | None = None,
    after_seq: int | None = None,
    limit: int = PAGE_SIZE,
    project: Project | None = None,
) -> TimelinePage:
    """Up to `limit` entries in order: the newest, or those just before `before_seq`, or just
    after `after_seq`. Keyset on seq, never OFFSET, so page 200 costs what page 1 does."""
    visible = entries_for(thread=thread, audience=audience, project=project)
    if after_seq is not None:
        # One entry before the page, for its day header, then the page, then one to spare.
        rows = list(visible.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
        previous = visible.filter(seq__lte=after_seq).order_by("-seq").first()
        has_later = len(rows) > limit
        entries = load_attachments(rows[:limit])
        load_seen(entries, thread=thread, audience=audience)
        _mark_day_starts(entries, previous)
        return TimelinePage(entries=entries, has_earlier=previous is not None, has_later=has_later)

    if before_seq is not None:
        visible = visible.filter(seq__lt=before_seq)
    # limit + 1: the extra row says whether there is more and dates the first day header.
    rows = list(visible.order_by("-seq")[: limit + 1])
    has_earlier = len(rows) > limit
    previous = rows[limit] if has_earlier else None
    entries = load_attachments(list(reversed(rows[:limit])))
    load_seen(entries, thread=thread, audience=audience)
    _mark_day_starts(entries, previous)
    return TimelinePage(entries=entries, has_earlier=has_earlier, has_later=before_seq is not None)


def page_around(
    *,
    thread: Thread,
    audience: Side,
    seq: int,
    limit: int = PAGE_SIZE,
    project: Project | None = None,
) -> TimelinePage:
    """A page holding entry `seq` in context, for opening a search hit: mostly what came
    before it, at least a fifth of a page after it, and more after when little came before."""
    visible = entries_for(thread=thread, audience=audience, project=project)
    before = list(visible.filter(seq__lte=seq).order_by("-seq")[: limit + 1])
    after = list(visible.filter(seq__gt=seq).order_by("seq")[: limit + 1])
    want_after = max(limit // 5, limit - len(before))
    after_shown = after[: min(want_after, len(after))]
    before_shown = before[: limit - len(after_shown)]
    has_earlier = len(before) > len(before_shown)
    entries = load_attachments(list(reversed(before_shown)) + after_shown)
    load_seen(entries, thread=thread, audience=audience)
    _mark_day_starts(entries, before[len(before_shown)] if has_earlier else None)
    return TimelinePage(
        entries=entries, has_earlier=has_earlier, has_later=len(after) > len(after_shown)
    )


def _matching(*, thread: Thread, audience: Side, query: str) -> QuerySet[Entry]:
    """Entries matching `query`, newest first: PostgreSQL full-text search (English stemming,
    web-search syntax: "a phrase", -not, or) over the stored, indexed search document; a
    plain substring match elsewhere. Staff search call transcripts too; a customer's search
    never reads them (nor, through entries_for, internal notes)."""
    visible = entries_for(thread=thread, audience=audience)
    staff = audience == Side.STAFF
    if connection.vendor == "postgresql":
        words = SearchQuery(query, search_type="websearch", config="english")
        found = Q(document=words)
        if staff:
            visible = visible.alias(transcript_document=TRANSCRIPT_DOCUMENT)
            found |= Q(transcript_document=words)
        matches = visible.alias(document=SEARCH_DOCUMENT).filter(found)
    else:
        found = Q(body__icontains=query)
        if staff:
            found |= Q(transcript__icontains=query)
        matches = visible.filter(found)
    return matches.order_by("-seq")


# Search looks through the newest entries first, then the rest. See search_entries.
SEARCH_RECENT_WINDOW = 2000


def search_entries(*, thread: Thread, audience: Side, query: str, limit: int = 30) -> list[Entry]:
    """The newest `limit` entries matching `query` (none for a blank query).

    In two steps, so that no word costs a walk of the whole thread: the newest
    SEARCH_RECENT_WINDOW entries by sequence number (a bounded range of the thread's index),
    and only if they hold fewer than `limit` matches, the older ones through the search index
    alone (ordered by an expression, so the planner cannot choose to walk the thread in order
    instead; a word that made it this far is in fewer than limit/window of the entries, so
    few rows come back to sort). A single query let PostgreSQL walk a 100,000-entry thread
    for a rare or absent word, which its statistics cannot tell from a common one: 40-60 ms
    (docs/performance.md, bench/search.py)."""
    query = (query or "").strip()
    if not query:
        return []
    matches = _matching(thread=thread, audience=audience, query=query)
    boundary = thread.last_seq - SEARCH_RECENT_WINDOW
    recent = list(matches.filter(seq__gt=boundary)[:limit])
    if len(recent) == limit or boundary <= 0:
        return recent
    older = matches.filter(seq__lte=boundary)
    pairs = _phrase_pairs(query) if audience == Side.CUSTOMER else []
    if pairs:
        # Narrows only: a row without the pairs cannot hold the phrase, and the phrase itself
        # is still checked on those that have them. Customer searches only: staff search
        # transcripts too, whose pairs are not stored.
        older = older.alias(word_pairs=WORD_PAIRS).filter(word_pairs__contains=pairs)
    older = older.order_by((F("seq") + 0).desc())
    return recent + list(older[: limit - len(recent)])


# A quoted phrase; and what can make one optional in web-search syntax ("or", "-").
_PHRASE = re.compile(r'"([^"]+)"')
_OPTIONAL = re.compile(r"(^|\s)-|\bor\b", re.IGNORECASE)


def _phrase_pairs(query: str) -> list[str]:
    """The adjacent word pairs (as migration 0016 stores them) that every entry matching
    `query` must hold: those of its quoted phrases, parsed by PostgreSQL as the search
    document is. None when a phrase may be optional (an "or", a "-" anywhere) or without
    PostgreSQL; one query otherwise."""
    phrases = _PHRASE.findall(query)
    if not phrases or _OPTIONAL.search(query) or connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array(SELECT DISTINCT unnest(messaging_word_pairs("
            "to_tsvector('english'::regconfig, phrase))) FROM unnest(%s::text[]) AS phrase)",
            [phrases],
        )
        return cursor.fetchone()[0]


# Around each match in a snippet: characters no message holds (private use), turned into
# <mark> by the template, so the text itself is escaped as any other.
_MARK_START, _MARK_END = "\ue000", "\ue001"


@dataclass(frozen=True)
class StaffHit:
    """A staff search result: the entry, where the words were found ("transcript" or the
    body), and a snippet as (text, marked) pieces."""

    entry: Entry
    in_transcript: bool
    snippet: list[tuple[str, bool]]


def _pieces(marked_text: str) -> list[tuple[str, bool]]:
    pieces, marked = [], False
    for part in re.split(f"([{_MARK_START}{_MARK_END}])", marked_text):
        if part in (_MARK_START, _MARK_END):
            marked = part == _MARK_START
        elif part:
            pieces.append((part, marked))
    return pieces


def _substring_snippet(text: str, query: str, width: int = 80) -> str:
    at = text.casefold().find(query.casefold())
    if at < 0:
        return text[: width * 2]
    start = max(0, at - width)
    end = at + len(query)
    prefix = "…" if start else ""
    suffix = "…" if end + width < len(text) else ""
    return (
        f"{prefix}{text[start:at]}{_MARK_START}{text[at:end]}{_MARK_END}"
        f"{text[end : end + width]}{suffix}"
    )


def staff_search(*, thread: Thread, query: str, limit: int = 30) -> list[StaffHit]:
    """The newest `limit` entries matching `query` in the whole thread, as staff see it
    (messages, internal notes, call transcripts), each with a snippet with the words marked.
    Two queries on PostgreSQL (the search, then the headlines of its few hits) or three
    when the search looks past its newest window (search_entries)."""
    entries = search_entries(thread=thread, audience=Side.STAFF, query=query, limit=limit)
    if not entries:
        return []
    query = query.strip()
    if connection.vendor == "postgresql":
        words = SearchQuery(query, search_type="websearch", config="english")
        options = {
            "config": "english",
            "start_sel": _MARK_START,
            "stop_sel": _MARK_END,
            "max_words": 30,
            "min_words": 12,
        }
        headlines = {
            pk: (body, transcript)
            for pk, body, transcript in Entry.objects.filter(pk__in=[e.pk for e in entries])
            .annotate(
                body_headline=SearchHeadline("body", words, **options),
                transcript_headline=SearchHeadline("transcript", words, **options),
            )
            .values_list("pk", "body_headline", "transcript_headline")
        }
    else:
        headlines = {
            e.pk: (
                _substring_snippet(e.body, query),
                _substring_snippet(e.transcript, query) if e.transcript else "",
            )
            for e in entries
        }
    hits = []
    for entry in entries:
        body, transcript = headlines[entry.pk]
        in_transcript = _MARK_START in (transcript or "") and _MARK_START not in (body or "")
        hits.append(
            StaffHit(
                entry=entry,
                in_transcript=in_transcript,
                snippet=_pieces(transcript if in_transcript else body or ""),
            )
        )
    return hits


def attachment_for(*, user, attachment_id: int) -> Attachment:
    """The attachment if `user` may see it (staff: any; a customer: their own thread's, not
    kept for staff, not on a note), else Http404: whose it is stays unsaid."""
    if not (user.is_authenticated and user.is_active):
        raise Http404
    files = Attachment.objects.select_related("entry")
    if not user.is_staff:
        files = files.filter(entry__thread__customer__user=user, staff_only=False).exclude(
            entry__kind=Entry.Kind.INTERNAL_NOTE
        )
    attachment = files.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404
    return attachment


# Links to a file for someone who cannot sign in (Twilio fetching a photo we send as MMS).
_SHARE_SALT = "messaging.attachment.share"
SHARE_MAX_AGE = 24 * 60 * 60


def shared_attachment_url(attachment: Attachment) -> str:
    """An absolute URL to the file that works without signing in, for a day."""
    token = TimestampSigner(salt=_SHARE_SALT).sign(str(attachment.pk))
    return f"{settings.SITE_URL}{reverse('attachment_shared', args=[token])}"


def shared_attachment(token: str) -> Attachment:
    try:
        pk = TimestampSigner(salt=_SHARE_SALT).unsign(token, max_age=SHARE_MAX_AGE)
    except BadSignature:
        raise Http404 from None
    # Never a staff-only file, nor a file on an internal note: a link handed to Twilio leaves
    # our hands.
    attachment = (
        Attachment.objects.filter(pk=int(pk), staff_only=False)
        .exclude(entry__kind=Entry.Kind.INTERNAL_NOTE)
        .first()
    )
    if attachment is None:
        raise Http404
    return attachment
