"""R7: a client cut off for 1-60 s while 100 messages post -> its page equals the server's
after resume.

Sarah's page is loaded from /messages/ and its socket opened, as a browser does; then it is cut
off (the socket closes) while 100 entries of every kind are posted, an internal note and a call
transcript among them, and reconnects with {"type": "resume", "last_seq": <its last entry>}.
What the page then holds (entries unique and ordered by data-seq, as thread.js keeps them)
must equal what the server gives her: the same sequence numbers in the same order, each entry
with the same text as the server renders it, and no staff-only word anywhere.

Cut-offs of 1 s and 5 s are waited for for real. The 60 s one is not (it would double the
suite's time): resume is keyed by sequence number and nothing in the consumer or the channel
layer expires with time, so it is represented by moving the clock 60 s on (time-machine)
between the cut and the reconnect, the posts stamped inside that minute. A last cut-off misses
250 entries, beyond MAX_RESUME_ENTRIES (200): the page must then equal the newest page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from html.parser import HTMLParser

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.utils import timezone

from messaging import actions
from messaging.consumers import MAX_RESUME_ENTRIES
from messaging.models import Side
from messaging.queries import entries_for, timeline_page
from messaging.routing import websocket_urlpatterns
from tests.notifications.brokers import publishing_to

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

router = URLRouter(websocket_urlpatterns)
APPEND = 'hx-swap-oob="beforeend:#timeline-entries"'
REPLACE = 'id="timeline-entries" hx-swap-oob="innerHTML"'
SECRETS = ("NOTE-SECRET", "TRANSCRIPT-SECRET")
HISTORY = 60
POSTS = 100
# (label, seconds cut off, waited for real, entries posted meanwhile)
CUT_OFFS = [
    ("1 s", 1, True, POSTS),
    ("5 s", 5, True, POSTS),
    ("60 s", 60, False, POSTS),
    ("60 s, 250 behind", 60, False, 250),
]


class _Entries(HTMLParser):
    """seq -> the entry's visible text (whitespace collapsed), in document order."""

    def __init__(self):
        super().__init__()
        self.texts: dict[int, str] = {}
        self._seq: int | None = None
        self._depth = 0
        self._chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "div":
            return
        if self._seq is not None:
            self._depth += 1
            return
        seq = dict(attrs).get("data-seq")
        if seq is not None:
            self._seq, self._depth, self._chunks = int(seq), 1, []

    def handle_endtag(self, tag):
        if tag != "div" or self._seq is None:
            return
        self._depth -= 1
        if self._depth == 0:
            self.texts[self._seq] = " ".join(" ".join(self._chunks).split())
            self._seq = None

    def handle_data(self, data):
        if self._seq is not None:
            self._chunks.append(data)


def entry_texts(html: str) -> dict[int, str]:
    parser = _Entries()
    parser.feed(html)
    return parser.texts


class Page:
    """Sarah's Messages page as thread.js keeps it."""

    def __init__(self, html: str):
        timeline = html[html.index('id="timeline-entries"') :]
        self.entries = entry_texts(timeline)
        self.frames: list[str] = []

    @property
    def seqs(self) -> list[int]:
        return sorted(self.entries)

    def apply(self, frame: str) -> None:
        self.frames.append(frame)
        if REPLACE in frame:
            self.entries = entry_texts(frame)
        elif APPEND in frame:
            self.entries |= entry_texts(frame)

    async def open_socket(self, user) -> WebsocketCommunicator:
        socket = WebsocketCommunicator(router, "/ws/thread/")
        socket.scope["user"] = user
        connected, _ = await socket.connect(timeout=10)
        assert connected
        last_seq = self.seqs[-1] if self.seqs else 0
        await socket.send_to(text_data=json.dumps({"type": "resume", "last_seq": last_seq}))
        # receive_nothing only looks; a timed-out receive_from would stop the consumer.
        while not await socket.receive_nothing(timeout=0.5, interval=0.02):
            self.apply(await socket.receive_from(timeout=10))
        return socket


def _post_mixed(thread, customer, staff, count: int, *, start: dt.datetime, span: float) -> None:
    """`count` entries of every kind, stamped across `span` seconds from `start`."""
    for i in range(count):
        at = start + dt.timedelta(seconds=span * i / count)
        match i % 10:
            case 3:
                actions.post_customer_reply(customer=customer, body=f"reply {i}", at=at)
            case 5:
                actions.add_internal_note(
                    thread=thread, author=staff, body=f"NOTE-SECRET {i} gate code", at=at
                )
            case 6:
                actions.post_automated_message(thread=thread, body=f"automated {i}", at=at)
            case 7:
                actions.post_event_card(
                    thread=thread,
                    card_kind="invoice",
                    title=f"Invoice {i} sent",
                    link_url="/invoices/",
                    at=at,
                )
            case 8:
                actions.log_call(
                    thread=thread,
                    started_at=at,
                    duration_seconds=60 + i,
                    transcript=f"TRANSCRIPT-SECRET {i}",
                    author=staff,
                )
            case _:
                actions.post_staff_message(thread=thread, author=staff, body=f"staff {i}", at=at)


async def test_a_cut_off_page_equals_the_servers_after_resume(
    customer_client, customer, staff, figures
):
    thread = await sync_to_async(actions.ensure_thread)(customer=customer)

    @sync_to_async
    def post(count: int, *, start: dt.datetime, span: float) -> None:
        # Their notification tasks go to a broker nobody consumes: sending is not the subject.
        try:
            with publishing_to("memory://localhost/"):
                _post_mixed(thread, customer, staff, count, start=start, span=span)
        finally:
            connection.close()

    @sync_to_async
    def server(first_seq: int) -> tuple[list[int], dict[int, str], list[int], str]:
        """What the server gives Sarah: her visible entries from `first_seq` on (queries),
        the text of each as rendered in full pages (every 50 after `first_seq`, through the
        same entries endpoint the page scrolls with) and the newest page."""
        try:
            visible = list(
                entries_for(thread=thread, audience=Side.CUSTOMER)
                .filter(seq__gte=first_seq)
                .order_by("seq")
                .values_list("seq", flat=True)
            )
            texts: dict[int, str] = {}
            after = first_seq - 1
            while True:
                html = customer_client.get("/messages/entries/", {"after": after}).content
                page = entry_texts(html.decode())
                if not page:
                    break
                texts |= page
                after = max(page)
            newest = [e.seq for e in timeline_page(thread=thread, audience=Side.CUSTOMER).entries]
            newest_html = customer_client.get("/messages/entries/").content.decode()
            return visible, texts, newest, newest_html
        finally:
            connection.close()

    await post(HISTORY, start=timezone.now() - dt.timedelta(days=1), span=3600)
    html = (await sync_to_async(customer_client.get)("/messages/")).content.decode()
    page = Page(html)
    assert len(page.seqs) == 50  # the newest page of what she may see
    socket = await page.open_socket(customer.user)  # already complete: nothing comes

    results = []
    for label, seconds, waited, count in CUT_OFFS:
        await socket.disconnect(timeout=10)  # cut off
        last_seq = page.seqs[-1]
        frames_before = len(page.frames)
        start = timezone.now()
        if waited:
            await post(count, start=start, span=seconds)
            await asyncio.sleep(max(0.0, seconds - (timezone.now() - start).total_seconds()))
        else:
            with time_machine.travel(start + dt.timedelta(seconds=seconds), tick=True):
                await post(count, start=start, span=seconds)
                socket = await page.open_socket(customer.user)
        if waited:
            socket = await page.open_socket(customer.user)

        new_frames = page.frames[frames_before:]
        assert len(new_frames) == 1  # one resume frame, whatever was missed
        assert not any(secret in frame for frame in page.frames for secret in SECRETS)
        visible, texts, newest, newest_html = await server(page.seqs[0])
        if count - count // 10 > MAX_RESUME_ENTRIES:  # one in ten is a note she never sees
            # Too far behind: the page is replaced by the newest page, equal to the server's.
            assert REPLACE in new_frames[0]
            assert page.seqs == newest == sorted(entry_texts(newest_html))
            assert page.entries == entry_texts(newest_html)
            outcome = f"newest page ({len(page.seqs)} entries)"
        else:
            assert APPEND in new_frames[0]
            assert page.seqs == visible  # same numbers, same order, nothing missing or extra
            assert page.entries == {seq: texts[seq] for seq in page.seqs}
            assert page.seqs[-len(newest) :] == newest
            resumed = [seq for seq in page.seqs if seq > last_seq]
            outcome = f"{len(resumed)} resumed, {len(page.seqs)} held = server's"
        results.append(f"{label}: {count} posted -> {outcome}")

    await socket.disconnect(timeout=10)
    secrets_seen = sum(secret in frame for frame in page.frames for secret in SECRETS)
    figures("; ".join(results) + f"; {secrets_seen} staff-only words reached the page")
