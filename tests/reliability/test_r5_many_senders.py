"""R5: 50 senders x 20 messages into one thread with 10% resubmits -> exactly 1,000 entries,
gap-free order, every connected client ends identical.

Fifty real threads on PostgreSQL (transaction=True: every append really commits, so its live
broadcast and notification tasks really fire) post through the verbs the send views call:
half as the customer (from many devices at once), half as five staff members, each post
carrying a page-made send key. One post in ten is sent again with the same key, as a double
click (at once) or a retried request (at the end of that sender's run). Meanwhile four sockets
(two customer pages, two staff chats) on the configured channel layer (Redis under CI)
receive the live frames; afterwards each resumes from the last entry it shows, as the page
does on reconnect, and must then hold exactly the server's entries.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection

from messaging import actions
from messaging.models import Entry, Side, Thread
from messaging.queries import entries_for
from messaging.routing import websocket_urlpatterns
from notifications.models import NotificationPreferences
from tests.factories import StaffUserFactory
from tests.notifications.brokers import publishing_to

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SENDERS, PER_SENDER = 50, 20
RESUBMITTED = (0, 10)  # which of each sender's posts go twice: 2 of 20, 10%
STAFF_MEMBERS = 5

router = URLRouter(websocket_urlpatterns)
SEQ = re.compile(r'data-seq="(\d+)"')
APPEND = 'hx-swap-oob="beforeend:#timeline-entries"'
REPLACE = 'id="timeline-entries" hx-swap-oob="innerHTML"'


class Page:
    """A connected page as thread.js keeps it: entries unique by data-seq, appended by live
    and resume frames, replaced by a "newest page" frame; other frames (receipts, delivery
    lines) only re-render entries the page already shows."""

    def __init__(self, name: str, path: str, user):
        self.name = name
        self.communicator = WebsocketCommunicator(router, path)
        self.communicator.scope["user"] = user
        self.seqs: set[int] = set()
        self.resumed: set[int] = set()
        # Set by a "newest page" frame: the page then shows the newest entries, and the earlier
        # ones load as the reader scrolls up (thread.js), so it holds a tail of the timeline.
        self.replaced = False

    async def connect(self) -> None:
        connected, _ = await self.communicator.connect(timeout=10)
        assert connected, self.name
        await self.resume()

    async def resume(self) -> None:
        last_seq = max(self.seqs, default=0)
        await self.communicator.send_to(
            text_data=json.dumps({"type": "resume", "last_seq": last_seq})
        )

    def apply(self, frame: str) -> set[int]:
        seqs = {int(s) for s in SEQ.findall(frame)}
        if REPLACE in frame:
            self.seqs = seqs
            self.replaced = True
            return seqs
        if APPEND in frame:
            new = seqs - self.seqs
            self.seqs |= seqs
            return new
        return set()

    async def drain(self, quiet: float = 1.5) -> list[str]:
        """Every frame until the socket has been quiet for `quiet` seconds. (receive_nothing
        only looks; a timed-out receive_from would stop the consumer.)"""
        frames = []
        while not await self.communicator.receive_nothing(timeout=quiet, interval=0.02):
            frames.append(await self.communicator.receive_from(timeout=10))
        return frames


@pytest.fixture
def senders(customer, staff):
    # No quiet hours whatever the real clock says, so every notification goes at once.
    NotificationPreferences.objects.create(
        customer=customer, time_zone=customer.time_zone, quiet_hours_enabled=False
    )
    team = [staff] + [StaffUserFactory(password=None) for _ in range(STAFF_MEMBERS - 1)]
    return actions.ensure_thread(customer=customer), team


def _send_all(thread: Thread, customer, team) -> tuple[list[BaseException], list[tuple]]:
    """Fifty threads, started together; returns errors and (first pk, resubmit pk) pairs."""
    barrier = threading.Barrier(SENDERS)
    errors: list[BaseException] = []
    resubmits: list[tuple[int, int]] = []

    def sender(n: int) -> None:
        as_customer = n % 2 == 0
        author = team[n % STAFF_MEMBERS]

        def post(i: int, key: str):
            body = f"s{n} m{i}"
            try:
                if as_customer:
                    return actions.post_customer_reply(
                        customer=customer, body=body, idempotency_key=key
                    )
                return actions.post_staff_message(
                    thread=thread, author=author, body=body, idempotency_key=key
                )
            finally:
                # Each post is one request, which hands its connection back to the process's
                # pool when it finishes (DB_POOL_MAX, 20): fifty senders share it as fifty
                # request threads of one web process would.
                connection.close()

        try:
            barrier.wait()
            retry_later = []
            for i in range(PER_SENDER):
                key = f"portal:{uuid.uuid4()}"  # what the page puts in the form
                entry = post(i, key)
                if i == RESUBMITTED[0]:  # a double click
                    resubmits.append((entry.pk, post(i, key).pk))
                elif i in RESUBMITTED:  # a request retried after a timeout
                    retry_later.append((i, key, entry.pk))
            for i, key, pk in retry_later:
                resubmits.append((pk, post(i, key).pk))
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors, resubmits


def _server_state(thread: Thread):
    rows = list(Entry.objects.filter(thread=thread).order_by("pk").values_list("seq", "pk"))
    visible = {
        side: list(entries_for(thread=thread, audience=side).values_list("seq", flat=True))
        for side in (Side.CUSTOMER, Side.STAFF)
    }
    keys = Entry.objects.filter(thread=thread, idempotency_key__isnull=False).count()
    return rows, visible, keys, Thread.objects.get(pk=thread.pk).last_seq


async def test_fifty_senders_make_exactly_a_thousand_entries_and_every_client_agrees(
    senders, customer, figures
):
    thread, team = senders
    staff = team[0]
    pages = [
        Page("customer page 1", "/ws/thread/", customer.user),
        Page("customer page 2", "/ws/thread/", customer.user),
        Page("staff chat 1", f"/ws/staff/threads/{thread.pk}/", staff),
        Page("staff chat 2", f"/ws/staff/threads/{thread.pk}/", team[1]),
    ]
    for page in pages:
        await page.connect()

    # The senders run in threads; this loop keeps serving the sockets meanwhile. Each post
    # plans its deliveries in its transaction as always, but their tasks go to a broker no
    # worker consumes: sending is R6's subject, and here it would only slow the run.
    with publishing_to("memory://localhost/"):
        errors, resubmits = await asyncio.to_thread(_send_all, thread, customer, team)
    assert errors == []

    # The four pages drain at once, each until its own socket has been quiet (one after the
    # other, their quiet seconds added up to 8 s of waiting).
    async def take_live(page: Page) -> None:
        for frame in await page.drain():
            page.apply(frame)

    await asyncio.gather(*(take_live(page) for page in pages))
    live_counts = {page.name: len(page.seqs) for page in pages}

    # Then each resumes from the last entry it shows, as a page does on every reconnect.
    async def resume(page: Page) -> None:
        await page.resume()
        for frame in await page.drain(quiet=0.5):
            page.resumed |= page.apply(frame)
        await page.communicator.disconnect(timeout=10)

    await asyncio.gather(*(resume(page) for page in pages))

    @sync_to_async
    def server_state():
        try:
            return _server_state(thread)
        finally:
            connection.close()  # this helper thread's, so the test database can be dropped

    rows, visible, keyed, last_seq = await server_state()
    total = SENDERS * PER_SENDER
    seqs = [seq for seq, _ in rows]
    assert len(rows) == total
    assert seqs == list(range(1, total + 1))  # gap-free, no duplicates, in insert order
    assert last_seq == total and keyed == total
    assert len(resubmits) == SENDERS * len(RESUBMITTED)
    assert all(first == again for first, again in resubmits)  # each resubmit got its original
    for page in pages:
        side = Side.CUSTOMER if page.name.startswith("customer") else Side.STAFF
        if page.replaced:
            # Its first resume was answered after more than a page of sends (a loaded
            # machine): the consumer replaced its timeline with the newest page, as designed.
            # From there on it must hold every entry, with no gap.
            tail = [seq for seq in visible[side] if seq >= min(page.seqs)]
            assert sorted(page.seqs) == tail, page.name
        else:
            assert sorted(page.seqs) == visible[side], page.name
    whole = [page for page in pages if not page.replaced]
    assert len({frozenset(page.seqs) for page in whole}) <= 1  # all whole pages identical

    live = ", ".join(str(n) for n in live_counts.values())
    resumed = sum(len(page.resumed) for page in pages)
    figures(
        f"{SENDERS} senders x {PER_SENDER} + {len(resubmits)} resubmits -> {len(rows)} entries, "
        f"seq {seqs[0]}..{seqs[-1]} gap-free in insert order, 0 duplicates; "
        f"{len(pages)} clients held {live} live, {resumed} more on resume, "
        f"ended identical ({max(len(page.seqs) for page in pages)} each"
        + (
            f"; {len(pages) - len(whole)} replaced by the newest page and whole from there)"
            if len(whole) < len(pages)
            else ")"
        )
    )
