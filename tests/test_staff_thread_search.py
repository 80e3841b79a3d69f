"""The chat modal's search: the whole thread as staff see it (messages, internal notes, call
transcripts), each hit a snippet with the words marked and a link to the entry in context;
a customer's search still never reaches a note or a transcript; any text gets an answer."""

from __future__ import annotations

import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import actions
from messaging.models import Side
from messaging.queries import search_entries, staff_search


def _search(client, thread, q, **headers):
    response = client.get(f"/staff/chat/{thread.pk}/search/", {"q": q}, **headers)
    assert response.status_code == 200
    return response.content.decode()


def _marked(html: str) -> str:
    # PostgreSQL marks each word found, SQLite's substring match the whole text.
    return html.replace("</mark> <mark>", " ")


def test_staff_find_cedar_stain_in_the_call_transcript(staff_client, secrets_thread):
    html = _search(staff_client, secrets_thread, "cedar stain", HTTP_HX_REQUEST="true")
    assert "1 result for “cedar stain”" in html
    assert "Call transcript" in html
    assert "<mark>cedar stain</mark>" in _marked(html)
    (seq,) = re.findall(r'data-search-hit="(\d+)"', html)
    assert f"/staff/chat/{secrets_thread.pk}/?at={seq}#entry-{seq}" in html
    assert f"/staff/chat/{secrets_thread.pk}/entries/?at={seq}" in html


def test_staff_find_internal_notes_and_messages(staff_client, secrets_thread):
    note = _search(staff_client, secrets_thread, "gate code", HTTP_HX_REQUEST="true")
    assert "Internal note" in note
    assert "<mark>gate code</mark> 4512" in _marked(note)
    message = _search(staff_client, secrets_thread, "visible", HTTP_HX_REQUEST="true")
    assert "1 result" in message and "<mark>visible</mark>" in message


def test_a_hit_opens_the_page_around_it_in_the_timeline(staff_client, secrets_thread, staff):
    for i in range(80):  # the call is now far from the newest page
        actions.post_staff_message(thread=secrets_thread, author=staff, body=f"update {i}")
    (hit,) = staff_search(thread=secrets_thread, query="cedar stain")
    response = staff_client.get(f"/staff/chat/{secrets_thread.pk}/entries/?at={hit.entry.seq}")
    html = response.content.decode()
    assert f'id="entry-{hit.entry.seq}"' in html
    assert "cedar stain second coat" in html


def test_customers_never_find_the_transcript_or_the_note(customer_client, secrets_thread, customer):
    for query in ("cedar stain", "cedar", "TRANSCRIPT-SECRET", "gate code", "NOTE-SECRET"):
        assert search_entries(thread=secrets_thread, audience=Side.CUSTOMER, query=query) == []
        page = customer_client.get("/messages/search/", {"q": query}).content.decode()
        assert "Nothing in your messages matches" in page
        assert "cedar" not in page.replace(query, "") and "NOTE-SECRET" not in page.replace(
            query, ""
        )
    # And the staff search is not theirs to use.
    response = customer_client.get(f"/staff/chat/{secrets_thread.pk}/search/", {"q": "cedar"})
    assert response.status_code == 404


def test_another_thread_is_404(staff_client, secrets_thread):
    response = staff_client.get(f"/staff/chat/{secrets_thread.pk + 1000}/search/", {"q": "x"})
    assert response.status_code == 404


def test_without_htmx_it_is_a_page_of_its_own(staff_client, secrets_thread):
    html = _search(staff_client, secrets_thread, "cedar")
    assert "<h1" in html and "Search the conversation with Sarah Mitchell" in html
    assert "<mark>cedar</mark>" in html


def test_the_search_runs_a_fixed_number_of_queries(staff_client, secrets_thread, staff):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            _search(staff_client, secrets_thread, "deck", HTTP_HX_REQUEST="true")
        return len(queries)

    actions.post_staff_message(thread=secrets_thread, author=staff, body="deck")
    count()  # the first request also reads what the process then remembers
    before = count()
    for i in range(20):
        actions.post_staff_message(thread=secrets_thread, author=staff, body=f"deck {i}")
    assert count() == before


HOSTILE = [
    "'",
    '"',
    '"cedar',
    "%",
    "_",
    "%_%",
    "\\",
    "cedar\x00stain",
    "x" * 10_000,
    "🪵🎨",
    "cedar 🪵",
    "!!&&||:*",
    "-",
    "or",
    "the",
    "<script>alert(1)</script>",
    "   ",
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_search_strings_answer_fast_with_results_or_none(staff_client, secrets_thread, q):
    started = time.monotonic()
    html = _search(staff_client, secrets_thread, q, HTTP_HX_REQUEST="true")
    assert time.monotonic() - started < 2
    assert "<script>alert" not in html
    if "\x00" in q or len(q) > 200:
        assert 'role="alert"' in html  # the reason, and nothing searched
        assert "data-search-hit" not in html


@pytest.mark.postgres
def test_calls_stay_append_only_with_the_stored_transcript_document(secrets_thread):
    from django.db import DatabaseError, transaction

    from messaging.models import Entry

    call = Entry.objects.get(thread=secrets_thread, kind=Entry.Kind.CALL)
    # Nothing of an entry may change: the trigger leaves out the generated column (computed
    # after it runs), so an UPDATE that leaves the content as it is passes
    with connection.cursor() as cursor:
        same = "UPDATE messaging_entry SET transcript = transcript WHERE id = %s"
        cursor.execute(same, [call.pk])
    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE messaging_entry SET transcript = 'x' WHERE id = %s", [call.pk])
