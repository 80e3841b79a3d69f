"""Long threads: keyset pages, day headers, opening at a search hit, full-text search."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from messaging import actions
from messaging.models import Entry, Side
from messaging.queries import (
    PAGE_SIZE,
    SEARCH_DOCUMENT,
    search_entries,
    seen_at,
    timeline_page,
)


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-seq="(\d+)"', html)]


@pytest.fixture
def long_thread(thread, staff):
    start = timezone.now() - dt.timedelta(days=3)
    for i in range(120):
        actions.post_staff_message(
            thread=thread,
            author=staff,
            body=f"message number {i}",
            at=start + dt.timedelta(minutes=40 * i),
        )
    return thread


def test_the_page_opens_with_the_newest_fifty(customer_client, long_thread):
    html = customer_client.get("/messages/").content.decode()
    assert _seqs(html) == list(range(71, 121))
    assert "before=71" in html


def test_scrolling_up_loads_the_fifty_before_without_gaps_or_repeats(customer_client, long_thread):
    first = customer_client.get("/messages/entries/?before=71", HTTP_HX_REQUEST="true")
    assert _seqs(first.content.decode()) == list(range(21, 71))
    last = customer_client.get("/messages/entries/?before=21", HTTP_HX_REQUEST="true")
    html = last.content.decode()
    assert _seqs(html) == list(range(1, 21))
    assert "Load earlier" not in html
    # Entries loaded later look like the ones the page came with.
    assert html.count("Mike&#x27;s Contracting") == 20


def test_day_headers_are_not_repeated_across_page_boundaries(long_thread):
    newest = timeline_page(thread=long_thread, audience=Side.CUSTOMER)
    earlier = timeline_page(thread=long_thread, audience=Side.CUSTOMER, before_seq=newest.first_seq)
    loaded = earlier.entries + newest.entries
    everything = list(long_thread.entries.order_by("seq"))
    day = {e.seq: timezone.localtime(e.created_at).date() for e in everything}
    # A header goes above an entry exactly when its day differs from the entry before it
    # in the whole thread, wherever the page boundaries fall.
    expected = [e.seq for e in loaded if e.seq == 1 or day[e.seq] != day[e.seq - 1]]
    assert [e.seq for e in loaded if e.starts_day] == expected
    assert newest.entries[0].seq - 1 == earlier.entries[-1].seq


def test_opening_at_a_search_hit_shows_it_in_context_with_newer_to_load(
    customer_client, long_thread
):
    html = customer_client.get("/messages/?at=10").content.decode()
    seqs = _seqs(html)
    assert 10 in seqs and seqs == sorted(seqs) and len(seqs) == PAGE_SIZE
    assert "after=" in html  # newer entries load as the customer scrolls down
    assert 'data-focus-seq="10"' in html


def test_search_finds_words_and_dates_each_match(customer_client, long_thread):
    html = customer_client.get("/messages/search/", {"q": "number 7"}).content.decode()
    assert "?at=" in html
    assert "message number 7" in html


@pytest.mark.postgres
def test_search_uses_full_text_stemming_on_postgres(thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="The decks were stained")
    hits = search_entries(thread=thread, audience=Side.CUSTOMER, query="deck stain")
    assert [h.body for h in hits] == ["The decks were stained"]


@pytest.mark.postgres
def test_search_can_use_the_gin_index_on_the_stored_document(thread, staff):
    actions.post_staff_message(thread=thread, author=staff, body="deck")
    # The search's own condition, without the thread's (which a table this small prefers)
    qs = Entry.objects.alias(document=SEARCH_DOCUMENT).filter(
        document=SearchQuery("deck", search_type="websearch", config="english")
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = qs.explain()
    assert "entry_search_document" in plan
    assert "to_tsvector" not in plan  # read from the stored column, never recomputed


@pytest.mark.postgres
def test_entries_stay_append_only_with_the_stored_search_document(thread, staff, customer):
    entry = actions.post_staff_message(thread=thread, author=staff, body="deck")
    # the stored search document is computed after the trigger runs: reading still works
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    assert seen_at(entry) is not None
    # and the database itself still refuses a change of content
    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE messaging_entry SET body = 'changed' WHERE id = %s", [entry.pk])


@pytest.mark.parametrize("limit", [2, 30])
def test_search_looks_past_the_newest_window_and_keeps_newest_first(
    thread, staff, monkeypatch, limit
):
    # A small window, so that the older step runs: matches on both sides of its edge.
    monkeypatch.setattr("messaging.queries.SEARCH_RECENT_WINDOW", 5)
    for i in range(1, 13):
        body = f"chimney flashing {i}" if i in (2, 4, 10) else f"deck boards {i}"
        actions.post_staff_message(thread=thread, author=staff, body=body)
    thread.refresh_from_db()
    hits = search_entries(thread=thread, audience=Side.CUSTOMER, query="chimney", limit=limit)
    expected = ["chimney flashing 10", "chimney flashing 4", "chimney flashing 2"]
    assert [h.body for h in hits] == expected[:limit]


@pytest.mark.postgres
def test_a_phrase_past_the_newest_window_is_found_only_where_its_words_are_adjacent(
    thread, staff, monkeypatch
):
    # Older than the window, both words everywhere but adjacent in two entries only: the
    # stored word pairs narrow the search to those, the phrase decides among them.
    monkeypatch.setattr("messaging.queries.SEARCH_RECENT_WINDOW", 3)
    bodies = ["I saw the gate, thanks", "Saw thanks on the card", "thanks, saw it", "saw-thanks"]
    bodies += [f"deck boards {i}" for i in range(5)]
    for body in bodies:
        actions.post_staff_message(thread=thread, author=staff, body=body)
    thread.refresh_from_db()

    def found(query: str) -> list[str]:
        return [h.body for h in search_entries(thread=thread, audience=Side.CUSTOMER, query=query)]

    assert found('"saw thanks"') == ["saw-thanks", "Saw thanks on the card"]
    assert found('"thanks saw"') == ["thanks, saw it"]
    assert found('"gate thanks" card') == []
    assert found('"saw the gate"') == ["I saw the gate, thanks"]  # a stop word: no pair, found
    # "or" and "-" can make a phrase optional: the pairs are not required then
    assert found('"saw thanks" or "deck boards 4"') == [
        "deck boards 4", "saw-thanks", "Saw thanks on the card"
    ]  # fmt: skip
    assert found('card -"saw thanks"') == []
    assert found('"gate thanks"') == ["I saw the gate, thanks"]  # punctuation is no gap
    assert found('"boards deck"') == []


@pytest.mark.postgres
def test_an_absent_phrase_is_looked_up_in_the_word_pairs_index(thread, staff, monkeypatch):
    monkeypatch.setattr("messaging.queries.SEARCH_RECENT_WINDOW", 1)
    for _ in range(3):
        actions.post_staff_message(thread=thread, author=staff, body="saw it, thanks")
    thread.refresh_from_db()
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert search_entries(thread=thread, audience=Side.CUSTOMER, query='"saw thanks"') == []
    assert len(captured) == 3  # the newest window, the phrase's pairs, the older entries
    assert "\"word_pairs\") @> (ARRAY['saw thank'])" in captured[-1]["sql"]


@pytest.mark.postgres
def test_a_customer_phrase_search_past_the_window_never_finds_notes_or_transcripts(
    secrets_thread, staff, monkeypatch
):
    monkeypatch.setattr("messaging.queries.SEARCH_RECENT_WINDOW", 1)
    for i in range(3):
        actions.post_staff_message(thread=secrets_thread, author=staff, body=f"later {i}")
    secrets_thread.refresh_from_db()
    for query in ('"gate code"', '"second coat"', '"cedar stain"'):
        assert search_entries(thread=secrets_thread, audience=Side.CUSTOMER, query=query) == []
    staff_hits = search_entries(thread=secrets_thread, audience=Side.STAFF, query='"gate code"')
    assert [h.body for h in staff_hits] == ["NOTE-SECRET gate code 4512"]
