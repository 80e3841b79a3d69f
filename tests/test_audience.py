"""Invariant 3: internal notes and call transcripts never reach a customer surface."""

from __future__ import annotations

from messaging.models import Side
from messaging.queries import search_entries, timeline_page

SECRETS = ("NOTE-SECRET", "TRANSCRIPT-SECRET", "gate code", "cedar stain")


def _assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_customer_messages_page_shows_no_notes_or_transcripts(customer_client, secrets_thread):
    response = customer_client.get("/messages/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "visible to all" in page
    assert "Phone call" in page
    _assert_no_secrets(page)


def test_customer_entries_fragment_shows_no_notes_or_transcripts(customer_client, secrets_thread):
    response = customer_client.get("/messages/entries/?before=100", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    _assert_no_secrets(response.content.decode())


def test_customer_search_never_finds_notes_or_transcripts(customer_client, secrets_thread):
    for query in ("gate", "4512", "cedar", "NOTE-SECRET", "TRANSCRIPT-SECRET"):
        response = customer_client.get("/messages/search/", {"q": query})
        assert response.status_code == 200
        page = response.content.decode()
        assert "0 results" in page
        assert "Nothing in your messages matches" in page
        assert search_entries(thread=secrets_thread, audience=Side.CUSTOMER, query=query) == []


def test_customer_timeline_query_never_loads_transcripts(secrets_thread):
    page = timeline_page(thread=secrets_thread, audience=Side.CUSTOMER)
    kinds = [entry.kind for entry in page.entries]
    assert "internal_note" not in kinds
    call = next(entry for entry in page.entries if entry.kind == "call")
    assert "transcript" in call.get_deferred_fields()


def test_staff_chat_shows_notes_and_transcripts(staff_client, secrets_thread):
    response = staff_client.get(f"/staff/chat/{secrets_thread.pk}/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "NOTE-SECRET" in page
    assert "TRANSCRIPT-SECRET" in page
