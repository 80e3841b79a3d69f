"""Live updates: after an append or a read commits, tell the Channels groups that care.

A broadcast carries ids, never rendered HTML: each consumer renders the entry for its own
viewer, so staff-only content cannot leak through a shared frame. The channel layer delivers
at most once; pages resume from their last sequence number, so a lost frame costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import transaction

logger = logging.getLogger(__name__)

STAFF_INBOX_GROUP = "staff-inbox"


def thread_group(thread_id: int, audience: str) -> str:
    """Group name for one thread and one audience ("customer" or "staff")."""
    return f"thread-{thread_id}-{audience}"


# Broadcasts from plain synchronous code (Celery tasks, management commands, the test client)
# run on this one loop of the process. async_to_sync would make a new event loop for each,
# and the Redis layers keep their connections per loop: every broadcast then opened a new
# connection to Redis (and said SELECT on a non-zero database) and dropped it again.
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _broadcast_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked worker starts its own
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="live-broadcast", daemon=True).start()
        return _loop


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's loop when this thread serves it (a request or a consumer's database
    call, through sync_to_async): asgiref remembers it for async_to_sync. It never forgets
    it, so a thread that once served a loop since closed (an async view run by async_to_sync
    in plain synchronous code) still names that one: only a running loop counts."""
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


# Broadcasts through channels_redis's pub/sub layer (production's) are published from the
# calling thread by a client of their own, as one script: every group of one broadcast in one
# Redis round trip and one command, with no hand-off to an event loop (async_to_sync onto
# the server's loop, then one PUBLISH per group, was a fifth of a send's time). Each group's
# channel is the one the layer's own group_send publishes to (its prefix, "__group__", the
# group), and the payload is the layer's own serialisation.
_PUBLISH_ALL = "for i = 1, #KEYS do redis.call('PUBLISH', KEYS[i], ARGV[1]) end"
# A broadcast waits at most this long for Redis: the message is committed whatever happens.
PUBLISH_TIMEOUT_SECONDS = 2


class _Publisher:
    def __init__(self, layer: RedisPubSubChannelLayer):
        import redis

        # The layer keeps what it was configured with (channels_redis 4: hosts, prefix).
        self.layer = layer
        self.prefix = layer._kwargs.get("prefix", "asgi")
        self.client = redis.Redis.from_url(
            layer._kwargs["hosts"][0],
            socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
            socket_timeout=PUBLISH_TIMEOUT_SECONDS,
        )
        self.script = self.client.register_script(_PUBLISH_ALL)

    def publish(self, groups: list[str], message: dict) -> None:
        channels = [f"{self.prefix}__group__{group}" for group in groups]
        self.script(keys=channels, args=[self.layer.serialize(message)])


_publishers: dict[tuple[int, int], tuple[object, _Publisher | None]] = {}


def _publisher(layer) -> _Publisher | None:
    """The direct publisher for `layer`: the pub/sub layer on one Redis server named by URL
    (else None, and the layer's own group_send). One per process and layer (a forked worker
    makes its own connections; tests that change the layer get a new one)."""
    key = (os.getpid(), id(layer))
    known = _publishers.get(key)
    if known is None or known[0] is not layer:
        hosts = getattr(layer, "_kwargs", {}).get("hosts") or []
        direct = (
            isinstance(layer, RedisPubSubChannelLayer)
            and len(hosts) == 1
            and isinstance(hosts[0], str)
        )
        known = _publishers[key] = (layer, _Publisher(layer) if direct else None)
    return known[1]


def _send(groups: list[str], message: dict, *, wait: bool = True) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    publisher = _publisher(layer)
    if publisher is not None:
        try:
            publisher.publish(groups, message)
        except Exception:
            # Redis down must not fail a committed message: pages resume on reconnect.
            logger.exception("live broadcast to %s failed; pages resume on reconnect", groups)
        return

    async def send_all() -> None:
        for group in groups:
            try:
                await layer.group_send(group, message)
            except Exception:
                # Redis down must not fail a committed message: pages resume on reconnect.
                logger.exception("live broadcast to %s failed; pages resume on reconnect", group)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if _server_loop() is not None:
            # On the server's loop, with the layer connection it already holds (and the
            # in-memory layer's queues, which belong to that loop).
            async_to_sync(send_all)()
            return
    # Plain synchronous code, or a thread that runs an event loop of its own (where
    # async_to_sync cannot nest): the process's broadcast loop.
    sent = asyncio.run_coroutine_threadsafe(send_all(), _broadcast_loop())
    if wait:
        sent.result()


def broadcast_entry_on_commit(entry) -> None:
    groups = [thread_group(entry.thread_id, "staff"), STAFF_INBOX_GROUP]
    if not entry.staff_only:
        groups.insert(0, thread_group(entry.thread_id, "customer"))
    message = {
        "type": "entry.appended",
        "thread_id": entry.thread_id,
        "entry_id": entry.pk,
        "seq": entry.seq,
    }
    transaction.on_commit(lambda: _send(groups, message))


def broadcast_read_on_commit(*, thread, side: str, from_seq: int, up_to_seq: int) -> None:
    groups = [
        thread_group(thread.pk, "customer"),
        thread_group(thread.pk, "staff"),
        STAFF_INBOX_GROUP,
    ]
    message = {
        "type": "thread.read",
        "thread_id": thread.pk,
        "side": side,
        "from_seq": from_seq,
        "seq": up_to_seq,
    }
    transaction.on_commit(lambda: _send(groups, message))


def broadcast_deliveries_changed_on_commit(
    entries: list[tuple[int, int]], *, wait: bool = True
) -> None:
    """What became of these entries' notifications changed ("Sending" became "Delivered"):
    staff chats re-render them. `entries` holds (thread id, seq) pairs. Staff only: the
    customer never sees delivery status. `wait=False` (the worker's threads, off any server
    loop) hands the frame to the process's broadcast loop and goes on: the frame is a hint
    to re-render, a chat that misses it reads the status on its next render, and waiting
    for the loop cost the worker's threads 5–17% of each delivery (bench.deliveries)."""
    by_thread: dict[int, list[int]] = {}
    for thread_id, seq in entries:
        by_thread.setdefault(thread_id, []).append(seq)

    def send() -> None:
        for thread_id, seqs in by_thread.items():
            message = {
                "type": "deliveries.changed",
                "thread_id": thread_id,
                "seqs": sorted(set(seqs)),
                # Each change renders anew (statuses move on); the open chats of one process
                # share that one render.
                "change": uuid.uuid4().hex,
            }
            _send([thread_group(thread_id, "staff")], message, wait=wait)

    if by_thread:
        transaction.on_commit(send)
