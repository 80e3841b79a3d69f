"""Photos texted to us (MMS) are fetched within a deadline, a text whose photo never comes is
shown without it after a bounded number of tries, and a signed link never serves a file on
an internal note."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from PIL import Image

from messaging import actions
from messaging.attachments import check_attachment
from messaging.models import Entry
from messaging.queries import shared_attachment_url
from notifications.inbound import actions as inbound_actions
from notifications.models import InboundMessage
from notifications.outbound import transports
from notifications.outbound.transports import TransportError
from tests.fakes.base import Reply

pytestmark = pytest.mark.django_db
URL = "/webhooks/twilio/sms/"
SIGNED_URL = f"http://127.0.0.1:8000{URL}"
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def _cdn_url(fake_twilio, media_url: str) -> str:
    return f"{fake_twilio.url}/cdn/{urlsplit(media_url).path.rsplit('/', 1)[1]}"


def test_a_photo_that_trickles_in_is_cut_off_at_the_deadline(fake_twilio, settings):
    settings.NOTIFICATIONS_PROVIDER_TIMEOUT = 0.5  # each read; the whole fetch gets 1 s
    url = fake_twilio.add_media(photo(), "image/jpeg")
    # A byte every 0.1 s: no read ever waits long enough to time out.
    fake_twilio.script(
        Reply(307, None, headers={"Location": _cdn_url(fake_twilio, url)}),
        Reply(200, photo(), headers={"Content-Type": "image/jpeg"}, trickle=0.1),
    )
    outcome = {}

    def fetch():
        started = time.monotonic()
        try:
            transports.sms_transport().fetch_media(url)
        except TransportError as error:
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the fetch was still running after 20 s"
    assert outcome["seconds"] < 2.5
    error = outcome["error"]
    assert not error.permanent and "not fetched within 1 s" in error.message


def test_a_text_whose_photo_never_comes_is_shown_after_five_tries_with_a_note(
    client, fake_twilio, customer, thread, committed
):
    url = fake_twilio.add_media(photo(), "image/jpeg")
    fake_twilio.script(*[Reply(503, "unavailable") for _ in range(10)])
    arrived = DAYTIME
    with time_machine.travel(arrived, tick=False):
        form, signature = fake_twilio.inbound(
            SIGNED_URL, sender="+15555550123", body="Is this rot?", media=[(url, "image/jpeg")]
        )
        with committed():
            assert client.post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.status == InboundMessage.Status.RECEIVED and inbound.fetch_attempts == 1
    assert not Entry.objects.exists()

    # The sweeper tries again, a little later each time: 2, 4, 6, 8 minutes after arrival.
    queued = []
    for minutes in range(1, 12):
        now = arrived + dt.timedelta(minutes=minutes, seconds=1)
        with time_machine.travel(now, tick=False):
            if inbound_actions.sweep_inbound(now=now):
                queued.append(minutes)
    assert queued == [2, 4, 6, 8]
    inbound.refresh_from_db()
    assert inbound.status == InboundMessage.Status.APPENDED and inbound.fetch_attempts == 5

    reply = Entry.objects.get(kind=Entry.Kind.CUSTOMER_REPLY)
    assert reply.body == "Is this rot?" and reply.attachment_count == 0
    note = Entry.objects.get(kind=Entry.Kind.INTERNAL_NOTE)
    assert "photo 1 could not be fetched (5 tries" in note.body
    with time_machine.travel(arrived + dt.timedelta(hours=1), tick=False):
        assert inbound_actions.sweep_inbound() == 0  # nothing left to try


def test_a_shared_link_never_serves_a_file_on_an_internal_note(thread, staff):
    file = check_attachment(name="gate.jpg", content_type="image/jpeg", data=photo())
    note = actions.add_internal_note(
        thread=thread, author=staff, body="Gate code photo", attachments=[file]
    )
    message = actions.post_staff_message(
        thread=thread, author=staff, body="The deck", attachments=[file], notify=False
    )
    note_link = shared_attachment_url(note.attachments.get())
    message_link = shared_attachment_url(message.attachments.get())
    assert Client().get(urlsplit(message_link).path).status_code == 200
    assert Client().get(urlsplit(note_link).path).status_code == 404
