"""Transcripts (messaging/transcripts.py): the whole thread as canonical JSON and as PDF, for
staff and for the customer, streamed; the PDF names its JSON twin's SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import tracemalloc
import warnings
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import AsyncRequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from crm_events import actions as crm
from crm_events.actions.common import LineData
from messaging import actions, transcripts, views
from messaging.attachments import NewAttachment
from messaging.models import Entry, Side
from notifications.models import Delivery
from notifications.outbound.provider_status import record_sms_status
from tests.images import phone_photo

SECRETS = ("NOTE-SECRET", "TRANSCRIPT-SECRET", "gate code", "cedar stain")
PHOTO = phone_photo()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _body(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.fixture
def full_thread(secrets_thread, customer, staff, project, settings, tmp_path):
    """Sarah's thread with every kind of entry: a message texted and delivered, a reply with a
    photo, an invoice card, a call with its transcript and an internal note."""
    settings.MEDIA_ROOT = tmp_path
    thread = secrets_thread
    texted = actions.post_staff_message(
        thread=thread, author=staff, body="Crew arrives at 8.", channel=Entry.Channel.SMS
    )
    sms = Delivery.objects.get(entry=texted, channel=Delivery.Channel.SMS)
    Delivery.objects.filter(pk=sms.pk).record_sent(provider_id="SM1", sent_at=timezone.now())
    record_sms_status(message_sid="SM1", status="delivered", delivery_id=sms.pk)
    actions.post_customer_reply(
        customer=customer,
        body="Here is the gate.",
        attachments=[NewAttachment(name="gate.jpg", content_type="image/jpeg", data=PHOTO)],
    )
    crm.send_invoice(
        customer=customer,
        number="2041",
        project=project,
        currency="USD",
        lines=[LineData("Composite decking", Decimal(1), Decimal("4200.00"))],
    )
    start = timezone.now() + dt.timedelta(days=2)
    crm.schedule_appointment(
        customer=customer,
        project=project,
        title="Stain the deck",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
    )
    actions.mark_read(thread=thread, side=Side.CUSTOMER)
    thread.refresh_from_db()
    return thread


def test_staff_json_has_every_entry_in_order_with_receipts_files_and_cards(
    staff_client, full_thread, staff
):
    response = staff_client.get(f"/staff/chat/{full_thread.pk}/transcript.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = json.loads(_body(response))
    entries = data["entries"]
    assert [e["seq"] for e in entries] == list(range(1, full_thread.last_seq + 1))
    assert data["includes_staff_only"] is True and data["copy"] == "staff"
    assert data["up_to_seq"] == full_thread.last_seq
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["internal_note"]["body"] == "NOTE-SECRET gate code 4512"
    assert by_kind["call"]["call"]["transcript"].startswith("TRANSCRIPT-SECRET")
    assert by_kind["call"]["call"]["duration_seconds"] == 360
    texted = next(e for e in entries if e["body"] == "Crew arrives at 8.")
    assert texted["author"] == staff.get_full_name() or staff.get_username()
    sms = next(r for r in texted["receipts"] if r["channel"] == "sms")
    assert sms["status"] == "delivered" and sms["recipient"] == "+15555550123"
    assert sms["sent_at"] and sms["delivered_at"] and sms["provider_id"] == "SM1"
    assert texted["seen_in_portal_at"] is None  # a text is never "seen"
    portal = next(e for e in entries if e["body"] == "Hi Sarah, visible to all.")
    assert portal["seen_in_portal_at"] is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", portal["at"])
    reply = next(e for e in entries if e["kind"] == "customer_reply")
    assert reply["author"] == "Sarah Mitchell" and reply["from"] == "customer"
    assert reply["attachments"] == [
        {
            "name": "gate.jpg",
            "size": len(PHOTO),
            "content_type": "image/jpeg",
            "sha256": hashlib.sha256(PHOTO).hexdigest(),
        }
    ]
    card, visit = [e for e in entries if e["kind"] == "event_card"]
    assert card["card"] == {"kind": "invoice", "link": "/invoices/2041/"}
    assert visit["document"]["type"] == "appointment"
    assert visit["document"]["title"] == "Stain the deck"
    assert card["document"] == {
        "type": "invoice",
        "number": "2041",
        "total": "4200.00",
        "currency": "USD",
        "status": "sent",
    }


def test_customer_copy_never_contains_notes_or_transcripts(customer_client, full_thread):
    for kind in ("json", "pdf"):
        response = customer_client.get(f"/messages/transcript.{kind}")
        assert response.status_code == 200
        body = _body(response)
        text = body.decode() if kind == "json" else _pdf_text(body)
        for secret in SECRETS:
            assert secret not in text, (kind, secret)
        assert "Hi Sarah, visible to all." in text
        assert "Phone call" in text or '"kind":"call"' in text
        assert "Invoice #2041" in text
        assert "Stain the deck" in text
    data = json.loads(_body(customer_client.get("/messages/transcript.json")))
    assert data["copy"] == "customer" and data["includes_staff_only"] is False
    assert "internal_note" not in {e["kind"] for e in data["entries"]}
    call = next(e for e in data["entries"] if e["kind"] == "call")
    assert "transcript" not in call["call"]
    texted = next(e for e in data["entries"] if e["body"] == "Crew arrives at 8.")
    assert texted["author"] == full_thread.customer.business.name
    # Her own address, masked, and nothing of the business's side or its errors.
    sms = next(r for r in texted["receipts"] if r["channel"] == "sms")
    assert sms["recipient"] == "***0123" and "error" not in sms and "provider_id" not in sms
    reply = next(e for e in data["entries"] if e["kind"] == "customer_reply")
    assert "receipts" not in reply  # what told the business is the business's


def test_staff_copy_without_staff_only_content_says_so(staff_client, full_thread):
    url = f"/staff/chat/{full_thread.pk}/transcript"
    data = json.loads(_body(staff_client.get(f"{url}.json?include_staff_only=0")))
    assert data["includes_staff_only"] is False
    assert "NOTE-SECRET" not in json.dumps(data) and "TRANSCRIPT-SECRET" not in json.dumps(data)
    without = _pdf_text(_body(staff_client.get(f"{url}.pdf?include_staff_only=0")))
    assert "Does not include internal notes or call transcripts." in without
    assert "NOTE-SECRET" not in without
    whole = _pdf_text(_body(staff_client.get(f"{url}.pdf")))
    assert "Includes internal notes and call transcripts" in whole
    assert "NOTE-SECRET gate code 4512" in whole and "TRANSCRIPT-SECRET" in whole


@pytest.mark.parametrize("copy", ["staff", "customer"])
def test_the_pdf_carries_the_sha256_of_its_json_twin(client, copy, full_thread, staff, customer):
    client.force_login(staff if copy == "staff" else customer.user)
    base = f"/staff/chat/{full_thread.pk}/transcript" if copy == "staff" else "/messages/transcript"
    text = _pdf_text(_body(client.get(f"{base}.pdf")))
    json_url = re.search(r"JSON of this transcript: (\S+)", text).group(1)
    stated = re.search(r"SHA-256 of that JSON: ([0-9a-f]{64})", text).group(1)
    assert json_url == f"{base}.json?up_to={full_thread.last_seq}"
    assert f"Up to entry {full_thread.last_seq}." in text
    # Later entries change nothing in the pinned twin.
    actions.post_staff_message(thread=full_thread, author=staff, body="One more thing.")
    assert hashlib.sha256(_body(client.get(json_url))).hexdigest() == stated
    assert hashlib.sha256(_body(client.get(f"{base}.json"))).hexdigest() != stated


def test_the_json_is_canonical(customer_client, full_thread):
    body = _body(customer_client.get("/messages/transcript.json"))
    assert transcripts.canonical(json.loads(body)) == body


def test_customers_and_strangers_cannot_fetch_staff_transcripts(
    client, customer_client, full_thread
):
    for kind in ("json", "pdf"):
        assert (
            customer_client.get(f"/staff/chat/{full_thread.pk}/transcript.{kind}").status_code
            == 404
        )
    client.logout()
    response = client.get("/messages/transcript.json")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_customer_gets_only_her_own_thread(client, other_customer, full_thread):
    actions.post_customer_reply(customer=other_customer, body="Daniel's own words.")
    client.force_login(other_customer.user)
    data = json.loads(_body(client.get("/messages/transcript.json")))
    assert [e["body"] for e in data["entries"]] == ["Daniel's own words."]
    assert "visible to all" not in json.dumps(data)


def test_staff_get_404_for_a_thread_that_does_not_exist(staff_client, full_thread):
    assert staff_client.get(f"/staff/chat/{full_thread.pk + 999}/transcript.pdf").status_code == 404


@pytest.mark.parametrize("query", ["up_to=abc", "up_to=-1", "include_staff_only=maybe"])
def test_bad_options_answer_400_with_the_reason(staff_client, full_thread, query):
    response = staff_client.get(f"/staff/chat/{full_thread.pk}/transcript.json?{query}")
    assert response.status_code == 400
    assert b"transcript options" in response.content


# -- streaming -------------------------------------------------------------------------------


def _long_thread(thread, entries: int) -> None:
    """`entries` messages, bulk-inserted in one statement (the actions would take seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO messaging_entry (thread_id, seq, kind, channel, body, urgent, card_kind,
                link_url, transcript, attachment_count, created_at)
            SELECT %s, %s + n, 'customer_reply', 'portal', 'Message number ' || n, false, '',
                '', '', 0, now() - (%s - n) * interval '1 minute'
            FROM generate_series(1, %s) AS n
            """,
            [thread.pk, thread.last_seq, entries, entries],
        )
        cursor.execute(
            "UPDATE messaging_thread SET last_seq = last_seq + %s WHERE id = %s",
            [entries, thread.pk],
        )
    thread.refresh_from_db()


def _peak_while_streaming(response) -> tuple[int, int]:
    """(peak bytes allocated while the body streamed, body size)."""
    tracemalloc.start()
    size = sum(len(piece) for piece in response.streaming_content)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, size


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["json", "pdf"])
def test_a_long_thread_streams_in_chunks_with_bounded_memory_and_queries(
    staff_client, thread, kind
):
    url = f"/staff/chat/{thread.pk}/transcript.{kind}"
    _long_thread(thread, transcripts.CHUNK)
    small_peak, small_size = _peak_while_streaming(staff_client.get(url))
    _long_thread(thread, transcripts.CHUNK * 3)
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(url)
        peak, size = _peak_while_streaming(response)
    assert response.streaming
    assert size > 3.5 * small_size
    # Four times the entries, about the same memory: one chunk at a time.
    assert peak < 2 * small_peak, (peak, small_peak)
    # Per chunk: entries, attachments, receipts (the PDF reads the thread twice: its hash).
    # No query per entry; the request's own (session, user, thread) and the end's one empty
    # chunk make the rest.
    passes = 2 if kind == "pdf" else 1
    assert len(queries) <= passes * (3 * 5) + 6, len(queries)


def test_under_asgi_the_body_is_an_async_iterator(staff, full_thread):
    # Django's ASGI handler reads a sync iterator whole into a list (and warns) before it
    # sends a byte; the view hands it an async one there. (Called in process: an ASGI test
    # client would run the view on another connection, outside this test's transaction.)
    request = AsyncRequestFactory().get(f"/staff/chat/{full_thread.pk}/transcript.json")
    request.user = staff
    response = views.staff_transcript(request, full_thread.pk, kind="json")
    assert response.is_async

    async def read() -> bytes:
        return b"".join([piece async for piece in response.streaming_content])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        body = async_to_sync(read)()
    assert json.loads(body)["up_to_seq"] == full_thread.last_seq


def test_times_are_in_the_readers_time_zone(customer_client, full_thread, customer):
    customer.time_zone = "America/Chicago"
    customer.save(update_fields=["time_zone"])
    data = json.loads(_body(customer_client.get("/messages/transcript.json")))
    first = dt.datetime.fromisoformat(data["entries"][0]["at"])
    assert data["time_zone"] == "America/Chicago"
    assert first.utcoffset() in (dt.timedelta(hours=-5), dt.timedelta(hours=-6))


# -- attachment hashes -----------------------------------------------------------------------


def _stored_photo(customer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    entry = actions.post_customer_reply(
        customer=customer,
        body="",
        attachments=[NewAttachment(name="deck.jpg", content_type="image/jpeg", data=PHOTO)],
    )
    return entry.attachments.get()


def test_a_stored_file_gets_its_sha256(customer, settings, tmp_path):
    assert _stored_photo(customer, settings, tmp_path).sha256 == hashlib.sha256(PHOTO).hexdigest()


@pytest.mark.postgres
def test_the_backfill_fills_empty_hashes_and_the_database_allows_nothing_else(
    customer, settings, tmp_path
):
    attachment = _stored_photo(customer, settings, tmp_path)
    with connection.cursor() as cursor:  # as a file stored before hashes were kept
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER refuses pending FK checks
        cursor.execute("ALTER TABLE messaging_attachment DISABLE TRIGGER USER")
        cursor.execute("UPDATE messaging_attachment SET sha256 = '' WHERE id = %s", [attachment.pk])
        cursor.execute("ALTER TABLE messaging_attachment ENABLE TRIGGER USER")
    out = io.StringIO()
    call_command("backfill_attachment_hashes", stdout=out)
    assert out.getvalue().startswith("1 hashed")
    attachment.refresh_from_db()
    assert attachment.sha256 == hashlib.sha256(PHOTO).hexdigest()
    for change in ("sha256 = repeat('0', 64)", "name = 'other.jpg'"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE messaging_attachment SET {change} WHERE id = %s", [attachment.pk]
            )
