"""Sarah downloads her transcript from her account page, in Chromium."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from messaging import actions
from messaging.models import Entry
from notifications.models import Delivery
from notifications.transcripts import mask
from tests.e2e.test_accessibility import violations_on

pytestmark = pytest.mark.browser


def _words(text: str) -> str:
    # The PDF wraps lines where the page is full: compare text with its spacing folded.
    return " ".join(text.split())


def test_sarah_downloads_her_transcript_with_every_message_and_receipt_and_no_note(
    open_as, demo, server
):
    sarah, mike = demo
    thread = sarah.thread
    actions.post_staff_message(thread=thread, author=mike, body="The stain arrives Friday.")
    page = open_as(sarah.user, width=390, height=844)
    page.goto(f"{server.url}/account/")
    assert violations_on(page) == []
    with page.expect_download() as download:
        page.get_by_role("link", name="Download transcript (PDF)").click()
    assert download.value.suggested_filename.endswith(".pdf")
    data = Path(download.value.path()).read_bytes()
    text = _words("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages))

    shown = Entry.objects.filter(thread=thread).for_customer().order_by("seq")
    for entry in shown:
        assert f"#{entry.seq} " in text
        assert _words(entry.body.encode("cp1252", "replace").decode("cp1252")) in text
    receipts = Delivery.objects.filter(entry__thread=thread, audience=Delivery.Audience.CUSTOMER)
    assert receipts.exists()
    for receipt in receipts:
        assert f"to {mask(receipt.recipient)}: {receipt.status}" in text
    for secret in ("Gate code", "4512", "cedar stain", "Internal note"):
        assert secret not in text
