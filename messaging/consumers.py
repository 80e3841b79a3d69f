"""WebSocket consumers: the customer's thread, the staff chat modal, the staff project list.

Broadcasts carry ids (messaging.live); each consumer loads and renders what its own viewer may
see, with the same partials the pages use, and sends htmx out-of-band swaps that the htmx ws
extension applies. Clients send two kinds of frame:

- {"type": "resume", "last_seq": N} on every (re)connect; the consumer answers with every
  entry after N, so a page that missed frames while disconnected becomes complete (the
  channel layer delivers at most once).
- {"type": "read", "seq": N} when entries arrived live while the viewer is looking; it marks
  the thread read up to N, which is what turns the sender's receipt into "Seen".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, quote

from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from messaging import actions, live
from messaging.models import INBOUND_KINDS, Entry, Side, Thread
from messaging.queries import (
    entries_for,
    load_attachments,
    load_seen,
    reader_side,
    timeline_page,
)
from messaging.rendering import render_entries
from portal.access import staff_time_zone
from portal.models import Customer, Project

logger = logging.getLogger(__name__)

# How long a rendered frame is shared between the sockets of one process.
SHARED_RENDER_SECONDS = 30
_shared_renders: dict[tuple, asyncio.Future] = {}


async def shared_render(key: tuple, render) -> str | None:
    """Render once per process for everyone who would render the same thing; None when the
    render failed (the database is away), which the caller answers by closing the socket so
    that the page reconnects and resumes from what it holds.

    Every open tab of a thread receives each broadcast; without this, each socket ran its
    own queries and template render, one after another on Channels' single database thread,
    so the twentieth tab waited for twenty renders. The key always holds the audience and
    the time zone, so a customer never receives a frame rendered for staff."""
    future = _shared_renders.get(key)
    if future is None:
        future = asyncio.ensure_future(render())
        _shared_renders[key] = future
        loop = asyncio.get_running_loop()
        loop.call_later(SHARED_RENDER_SECONDS, _shared_renders.pop, key, None)
    try:
        return await asyncio.shield(future)
    except Exception:
        _shared_renders.pop(key, None)
        logger.exception("rendering a live frame failed; pages will resume on reconnect")
        return None


class _RowRender:
    """One thread's list rows in one time zone: the render running, and the one that will
    run after it for everyone who asked since it started."""

    __slots__ = ("render", "running", "waiting")

    def __init__(self) -> None:
        self.render = None
        self.running: asyncio.Task | None = None
        self.waiting: asyncio.Future | None = None


_row_renders: dict[tuple, _RowRender] = {}
_render_numbers = itertools.count(1)


async def coalesced_rows(key: tuple, render) -> tuple[int, tuple[str, ...]]:
    """The thread's rows rendered after this call, shared per process: while a render runs,
    every later event of the same rows waits for ONE render that starts when it ends, and
    shows the newest state. A burst of 100 sends into one thread renders its row a handful of
    times, not 100 (each superseded row would reach the list only to be replaced). Returns the
    render's number too: a socket that already sent that render's HTML sends nothing."""
    state = _row_renders.get(key)
    if state is None:
        state = _row_renders[key] = _RowRender()
    state.render = render
    if state.waiting is None:
        state.waiting = asyncio.get_running_loop().create_future()
        if state.running is None:
            _start_rows(key, state)
    future = state.waiting if state.waiting is not None else _last_started[key]
    return await asyncio.shield(future)


_last_started: dict[tuple, asyncio.Future] = {}


def _start_rows(key: tuple, state: _RowRender) -> None:
    future, state.waiting = state.waiting, None
    _last_started[key] = future

    async def run() -> None:
        number = next(_render_numbers)
        try:
            future.set_result((number, await state.render()))
        except Exception:
            logger.exception("rendering live rows failed; the list shows them on reload")
            future.set_result((number, ()))
        finally:
            state.running = None
            if state.waiting is not None:
                _start_rows(key, state)
            else:
                _row_renders.pop(key, None)
                _last_started.pop(key, None)

    state.running = asyncio.ensure_future(run())


_live_executor: ThreadPoolExecutor | None = None
_live_executor_lock = threading.Lock()


def live_executor() -> ThreadPoolExecutor:
    """The threads that do every live socket's database work and rendering in this process
    (settings.LIVE_THREADS)."""
    global _live_executor
    with _live_executor_lock:
        if _live_executor is None:
            _live_executor = ThreadPoolExecutor(
                max_workers=max(1, settings.LIVE_THREADS), thread_name_prefix="live"
            )
        return _live_executor


class _OffTheDatabaseThread(DatabaseSyncToAsync):
    # The executor is made on first use, once settings are read.
    def __init__(self, func):
        super().__init__(func, thread_sensitive=False)

    async def __call__(self, *args, **kwargs):
        self._executor = live_executor()
        return await super().__call__(*args, **kwargs)


def off_the_database_thread(func):
    """database_sync_to_async in the live threads (`live_executor`) rather than Channels'
    one database thread, for every call a socket makes. On that one thread, each customer
    frame, resume and read mark of the process queued behind all the others, and the thread
    got its turn at the GIL only among every request's thread: under ten customers sending
    back to back, the sender's other tab got its frame 23 s late (bench.mixed). Each call is
    whole in itself (its own queries, its own transaction when it writes), so it may run in
    any thread; each thread keeps its own connection, closed around each call as Channels
    does."""
    return _OffTheDatabaseThread(func)


MAX_FRAME_BYTES = 2048
# A client further behind than this gets its timeline replaced by the newest page instead.
MAX_RESUME_ENTRIES = 200
# The frames a page may send, and the field holding each one's sequence number.
FRAME_SEQ_FIELDS = {"resume": "last_seq", "read": "seq"}
# Close codes of our own (4000-4999 are the application's): the protocol's 1008/1009 make
# daphne's websocket library raise, the client sees 1011 and disconnect() never runs.
POLICY_VIOLATION = 4008
TOO_BIG = 4009
# The protocol's "try again later": one of the codes on which the htmx ws extension reconnects.
TRY_AGAIN_LATER = 1013


class FrameRefused(Exception):
    """A client frame we will not act on; the socket is closed with `code`."""

    def __init__(self, reason: str, *, code: int = POLICY_VIOLATION):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class GroupConsumer(AsyncWebsocketConsumer):
    """A socket in one channel-layer group, which it always leaves: on disconnect, and before
    it closes a socket itself (the server may never report that disconnect)."""

    group = ""

    async def dispatch(self, message: dict) -> None:
        # Channels' own dispatch first closes stale database connections on its one database
        # thread, for every event of every socket: one thread hop each, in turn, so a message
        # to 1,000 tabs waited for 1,000 of them, half of the fan-out's CPU (bench.live with
        # --profile). These sockets use no connection of that thread: their every database
        # call runs in the live threads and closes its connection around itself
        # (off_the_database_thread), and connect's session and user lookups do the same.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def join(self, group: str) -> None:
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def leave(self) -> None:
        if self.group:
            group, self.group = self.group, ""
            await self.channel_layer.group_discard(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        await self.leave()

    async def render_failed(self) -> None:
        # The frame is lost to this page: "try again later" makes the page reconnect (with
        # backoff) and resume from the last entry it holds, once the database answers again.
        # Counting the frame as sent instead left its entry missing from an open page for
        # good (make deploy-test's database restart under traffic found it).
        await self.leave()
        await self.close(code=TRY_AGAIN_LATER)

    async def refuse(self, reason: str, *, code: int = POLICY_VIOLATION) -> None:
        logger.warning("websocket refused and closed: %s", reason)
        await self.leave()
        await self.close(code=code)


class ThreadConsumer(GroupConsumer):
    """One thread, for one viewer: the customer (own thread only) or staff (any thread).
    A page showing one project's entries (the chip filter) connects with `?p=<code>` and
    receives only those; it does not mark the thread read, since it does not show all of it."""

    audience: Side
    project: Project | None = None
    # The last sequence number this socket's page holds, once it has resumed: a frame further
    # ahead means frames were lost in between.
    sent_seq: int | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        self.thread = await self._authorised_thread(user)
        if self.thread is None:
            logger.info("websocket refused: %s may not watch this thread", user)
            await self.close(code=POLICY_VIOLATION)
            return
        await self.join(live.thread_group(self.thread.pk, self.audience.value))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        try:
            frame = parse_frame(text_data, bytes_data)
        except FrameRefused as refused:
            await self.refuse(f"frame refused ({refused.reason})", code=refused.code)
            return
        if frame["type"] == "read":
            self._read_up_to(frame["seq"])
            return
        html = await self._resume(frame["seq"])
        if html is None:
            await self.refuse("resume from a future sequence number")
            return
        if html:
            await self.send(text_data=html)

    # A page sends a read frame for each entry that arrives while the viewer looks, so a
    # busy thread sends them faster than marks are written. Marks run one at a time per
    # socket, off this socket's event handling (its frames keep coming meanwhile); marks that
    # arrive while one is written become ONE mark, up to the highest, after it. A mark at or
    # below one this socket already wrote changes nothing and is skipped.
    marked_seq = 0
    marking: asyncio.Task | None = None
    mark_next: int | None = None

    def _read_up_to(self, seq: int) -> None:
        if self.project is not None or seq <= self.marked_seq:
            return  # one project's view is not the whole thread; or nothing new
        if self.marking is not None:
            self.mark_next = max(self.mark_next or 0, seq)
            return
        self.marking = asyncio.ensure_future(self._write_marks(seq))

    async def _write_marks(self, seq: int | None) -> None:
        try:
            while seq is not None:
                if not await self._mark_read(seq):
                    await self.refuse("read mark beyond the thread's end")
                    return
                self.marked_seq = max(self.marked_seq, seq)
                seq, self.mark_next = self.mark_next, None
                if seq is not None and seq <= self.marked_seq:
                    seq = None
        finally:
            self.marking = None

    # -- group events ----------------------------------------------------------------------

    async def entry_appended(self, event: dict) -> None:
        seq = event["seq"]
        if self.sent_seq is not None and seq > self.sent_seq + 1:
            # Frames before this one may never have come (the channel layer delivers at most
            # once, and while Redis is down no broadcast leaves at all), and the socket stayed
            # open, so the page will not resume by itself: send what lies between as appends.
            # Between is also what concurrent senders commit out of order, or notes a customer
            # never sees: those come as appends the page already has or finds nothing, and an
            # entry arriving after a later one is still sent (the page keeps each seq once).
            html, seq = await self._render_gap(self.sent_seq, seq)
        else:
            key = ("entry", event["entry_id"], self.audience.value, self.zone.key, self.project_id)
            html = await shared_render(key, lambda: self._render_new_entry(seq))
        if html is None:
            await self.render_failed()
            return
        if self.sent_seq is not None:
            self.sent_seq = max(self.sent_seq, seq)
        if html:
            await self.send(text_data=html)

    async def deliveries_changed(self, event: dict) -> None:
        # Staff groups only receive these: each entry's delivery lines are re-rendered.
        if self.audience != Side.STAFF:
            return
        seqs = tuple(event["seqs"][:MAX_RESUME_ENTRIES])
        key = ("deliveries", event["change"], self.zone.key, self.project_id)
        html = await shared_render(key, lambda: self._render_changed(seqs))
        if html is None:
            await self.render_failed()
            return
        if html:
            await self.send(text_data=html)

    async def thread_read(self, event: dict) -> None:
        # Only the other side's reading changes what this viewer sees ("Seen 10:24am").
        if event["side"] == self.audience.value:
            return
        key = (
            "receipts", self.thread.pk, event["from_seq"], event["seq"], event["side"],
            self.audience.value, self.zone.key, self.project_id,
        )  # fmt: skip
        html = await shared_render(
            key, lambda: self._render_receipts(event["from_seq"], event["seq"], event["side"])
        )
        if html is None:
            await self.render_failed()
            return
        if html:
            await self.send(text_data=html)

    # -- database and rendering (sync, in a thread) ----------------------------------------
    # Subclasses define _authorised_thread(user), which returns the thread this viewer may
    # watch (or None) and sets self.zone (the viewer's time zone) and self.entries_url.

    @property
    def project_id(self) -> int | None:
        return self.project.pk if self.project else None

    def _visible(self):
        return entries_for(thread=self.thread, audience=self.audience, project=self.project)

    def _context(self) -> dict:
        customer = self.thread.customer
        return {
            "audience": self.audience.value,
            "customer": customer,
            "business": customer.business,
        }

    def _render_entries(
        self, entries: list[Entry], *, swap: str = "", oob: str = "", read_seq: int | None = None
    ) -> str:
        load_attachments(entries)
        # The socket's thread is as of its connect: its watermark may be behind, unless the
        # caller read it with the entries (`read_seq`).
        load_seen(
            entries, thread=self.thread, audience=self.audience, current=False, read_seq=read_seq
        )
        with timezone.override(self.zone):
            inner = render_entries(entries, oob=oob, **self._context())
        if not swap:
            return inner
        return f'<div hx-swap-oob="{swap}">{inner}</div>' if inner.strip() else ""

    @off_the_database_thread
    def _render_new_entry(self, seq: int) -> str:
        visible = self._visible()
        # The entry and the one before it (for its day header), in one query, with the other
        # side's read watermark as it is now: a new entry is almost never read yet, and then
        # "Seen" needs no look at the read marks.
        reader = reader_side(self.audience)
        rows = list(
            visible.filter(seq__lte=seq)
            .annotate(read_seq=F(f"thread__{reader}_read_seq"))
            .order_by("-seq")[:2]
        )
        if not rows or rows[0].seq != seq:  # not for this viewer: a note never reaches a customer
            return ""
        entry, previous = rows[0], (rows[1] if len(rows) > 1 else None)
        with timezone.override(self.zone):
            entry.starts_day = previous is None or timezone.localdate(
                previous.created_at
            ) != timezone.localdate(entry.created_at)
        return self._render_entries(
            [entry], swap="beforeend:#timeline-entries", read_seq=entry.read_seq
        )

    @off_the_database_thread
    def _mark_read(self, seq: int) -> bool:
        thread = Thread.objects.get(pk=self.thread.pk)
        if seq > thread.last_seq:
            return False
        actions.mark_read(thread=thread, side=self.audience, up_to_seq=seq)
        return True

    @off_the_database_thread
    def _render_gap(self, after_seq: int, upto_seq: int) -> tuple[str, int]:
        """What the page lacks after `after_seq`, as appends: every committed entry up to the
        thread's last (broadcasts of later ones may be lost too), at least up to `upto_seq`,
        at most MAX_RESUME_ENTRIES at a time (the next frame brings the rest). Never replaces
        the timeline, so the reader's place stays. Returns the html and the last seq sent."""
        page = timeline_page(
            thread=self.thread,
            audience=self.audience,
            after_seq=after_seq,
            limit=MAX_RESUME_ENTRIES,
            project=self.project,
        )
        entries = list(page.entries)
        last = max([upto_seq, *(entry.seq for entry in entries)])
        return self._render_entries(entries, swap="beforeend:#timeline-entries"), last

    @off_the_database_thread
    def _resume(self, last_seq: int) -> str | None:
        thread = Thread.objects.only("last_seq").get(pk=self.thread.pk)
        if last_seq > thread.last_seq:
            return None
        self.sent_seq = thread.last_seq
        if last_seq == thread.last_seq:
            return ""
        page = timeline_page(
            thread=self.thread,
            audience=self.audience,
            after_seq=last_seq,
            limit=MAX_RESUME_ENTRIES,
            project=self.project,
        )
        if page.has_later:
            # Too far behind to patch: replace the timeline with the newest page.
            newest = timeline_page(thread=self.thread, audience=self.audience, project=self.project)
            load_seen(newest.entries, thread=self.thread, audience=self.audience, current=False)
            with timezone.override(self.zone):
                html = render_to_string(
                    "messaging/_timeline_page.html",
                    {
                        **self._context(),
                        "page": newest,
                        "entries_url": self.entries_url,
                        "filter_query": f"p={quote(self.project.code)}&" if self.project else "",
                    },
                )
            return f'<div id="timeline-entries" hx-swap-oob="innerHTML">{html}</div>'
        return self._render_entries(page.entries, swap="beforeend:#timeline-entries")

    @off_the_database_thread
    def _render_changed(self, seqs: tuple[int, ...]) -> str:
        entries = list(self._visible().filter(seq__in=seqs).order_by("seq"))
        for entry in entries:
            entry.starts_day = False  # the day header already stands on the page
        return self._render_entries(entries, oob="outerHTML")

    @off_the_database_thread
    def _render_receipts(self, from_seq: int, to_seq: int, reader_side: str) -> str:
        # Re-render the entries the other side has just read, so they gain "Seen …".
        entries = list(
            self._visible()
            .filter(
                seq__gt=max(from_seq, to_seq - MAX_RESUME_ENTRIES),
                seq__lte=to_seq,
                kind__in=INBOUND_KINDS[Side(reader_side)],
            )
            .order_by("seq")
        )
        for entry in entries:
            entry.starts_day = False  # the day header already stands on the page
        return self._render_entries(entries, oob="outerHTML")


class CustomerThreadConsumer(ThreadConsumer):
    audience = Side.CUSTOMER

    @off_the_database_thread
    def _authorised_thread(self, user) -> Thread | None:
        if not user.is_authenticated:
            return None
        customer = Customer.objects.select_related("business").filter(user=user).first()
        if customer is None:
            return None
        code = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("p", [""])[0]
        if code:
            self.project = customer.projects.filter(code=code).first()
            if self.project is None:  # not one of theirs
                return None
        thread = actions.ensure_thread(customer=customer)
        self.zone = zoneinfo.ZoneInfo(customer.time_zone)
        self.entries_url = reverse("customer_entries")
        return thread


class StaffThreadConsumer(ThreadConsumer):
    audience = Side.STAFF

    @off_the_database_thread
    def _authorised_thread(self, user) -> Thread | None:
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        thread_id = self.scope["url_route"]["kwargs"]["thread_id"]
        thread = (
            Thread.objects.select_related("customer", "customer__business")
            .filter(pk=thread_id)
            .first()
        )
        if thread is not None:
            self.zone = zoneinfo.ZoneInfo(staff_time_zone())
            self.entries_url = reverse("staff_entries", args=[thread.pk])
        return thread


class StaffInboxConsumer(GroupConsumer):
    """The staff project list: re-renders the rows of a thread whose unread count or last
    message changed; the page re-sorts rows (unread first, then newest)."""

    async def connect(self) -> None:
        user = self.scope["user"]
        if not (user.is_authenticated and user.is_active and user.is_staff):
            logger.info("staff inbox websocket refused for %s", user)
            await self.close(code=POLICY_VIOLATION)
            return
        self.zone = zoneinfo.ZoneInfo(await off_the_database_thread(staff_time_zone)())
        self.sent_rows: dict[int, int] = {}  # thread id: number of the last render sent
        self.row_tasks: dict[int, asyncio.Task] = {}  # rows on their way to this socket
        self.rows_again: set[int] = set()  # rows changed again while on their way
        await self.join(live.STAFF_INBOX_GROUP)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        # The list only listens: well-formed frames are ignored, malformed ones close it.
        try:
            parse_frame(text_data, bytes_data)
        except FrameRefused as refused:
            await self.refuse(f"inbox frame refused ({refused.reason})", code=refused.code)

    async def entry_appended(self, event: dict) -> None:
        await self._send_rows(event["thread_id"], ("entry", event["entry_id"]))

    async def thread_read(self, event: dict) -> None:
        await self._send_rows(event["thread_id"], ("read", event["side"], event["seq"]))

    async def _send_rows(self, thread_id: int, event_key: tuple) -> None:
        # Consumers handle their events one at a time: awaiting each row here would render
        # and send every superseded state in turn. A row already on its way is sent once more
        # when it arrives, in its newest state, however many events came meanwhile.
        if thread_id in self.row_tasks:
            self.rows_again.add(thread_id)
            return
        self.row_tasks[thread_id] = asyncio.ensure_future(self._row_to_list(thread_id))

    async def _row_to_list(self, thread_id: int) -> None:
        key = ("rows", thread_id, self.zone.key)
        try:
            while True:
                self.rows_again.discard(thread_id)
                number, frames = await coalesced_rows(key, lambda: self._render_rows(thread_id))
                # A render shared by several events of this socket is sent once.
                if frames and self.sent_rows.get(thread_id) != number:
                    self.sent_rows[thread_id] = number
                    for html in frames:
                        await self.send(text_data=html)
                if thread_id not in self.rows_again:
                    break
        finally:
            self.row_tasks.pop(thread_id, None)

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "row_tasks", {}).values()):
            task.cancel()
        await super().disconnect(code)

    @off_the_database_thread
    def _render_rows(self, thread_id: int) -> tuple[str, ...]:
        from portal.queries import assignable_staff, staff_project_rows
        from portal.rendering import render_project_rows
        from portal.templatetags.assignee import assignee_control_context

        rows = list(staff_project_rows().filter(customer__thread__pk=thread_id))
        if not rows:
            return ()
        staff_members = assignable_staff()
        with timezone.override(self.zone):
            # The same fragments as the list GET's: a row rendered here is a hit for the
            # next reload of the page, and the reverse.
            html = render_project_rows(rows, staff_members=staff_members, oob=True)
            # The chat modal's assignee control too, for whoever has this customer's chat
            # open (no one: htmx finds no target and drops it). A frame of its own: htmx
            # parses a frame of <tr>s as table content, where a <form> comes out empty.
            control = assignee_control_context(customer=rows[0].customer, where="chat")
            chat_control = render_to_string(
                "portal/_assignee.html",
                {**control, "staff_members": staff_members, "oob": True},
            )
            return (html, chat_control)


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> dict:
    """The client's frame as {"type": "resume" or "read", "seq": int}; FrameRefused if not."""
    if bytes_data is not None:
        raise FrameRefused("binary frame")
    if text_data is None or len(text_data.encode()) > MAX_FRAME_BYTES:
        raise FrameRefused("oversized frame", code=TOO_BIG)
    try:
        frame = json.loads(text_data)
    except ValueError:
        raise FrameRefused("malformed JSON") from None
    if not isinstance(frame, dict) or frame.get("type") not in FRAME_SEQ_FIELDS:
        raise FrameRefused("unknown message type")
    seq = frame.get(FRAME_SEQ_FIELDS[frame["type"]])
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise FrameRefused("sequence number is not a number")
    return {"type": frame["type"], "seq": seq}
