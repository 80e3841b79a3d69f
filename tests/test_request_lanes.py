"""portal.asgi's lanes: how many requests that read and that write run at once (bench.mixed,
docs/performance.md "Goal 1"). Through the real ASGI application: a request waits for its
lane before its thread runs."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.testing import HttpCommunicator
from django.core.signals import request_finished, request_started
from django.test import override_settings

from portal.asgi import OneHopASGIHandler, application, lane_for

pytestmark = pytest.mark.django_db(transaction=True)

HOST = [(b"host", b"testserver")]


@override_settings(WEB_READ_THREADS=3, WEB_WRITE_THREADS=1)
async def test_reads_and_writes_have_lanes_of_their_own_sized_by_settings():
    reads, writes = lane_for("GET"), lane_for("POST")
    assert lane_for("HEAD") is reads and lane_for("OPTIONS") is reads
    assert lane_for("PUT") is writes and lane_for("DELETE") is writes and reads is not writes
    assert reads._value == 3 and writes._value == 1


@override_settings(WEB_READ_THREADS=1, WEB_WRITE_THREADS=1)
async def test_a_request_waits_for_its_lane_and_the_other_lane_does_not():
    writes = lane_for("POST")
    await writes.acquire()  # the one write lane is busy
    try:
        # A page that only reads is served meanwhile...
        health = HttpCommunicator(application, "GET", "/health/", headers=HOST)
        response = await health.get_response(timeout=10)
        assert response["status"] == 200
        # ...while a write waits for its lane (its answer would be a 403 from CSRF).
        post = HttpCommunicator(application, "POST", "/messages/send/", headers=HOST)
        with pytest.raises(asyncio.TimeoutError):
            await post.get_response(timeout=0.5)
    finally:
        writes.release()


async def test_a_request_is_started_and_finished_in_its_own_hop_before_it_is_sent():
    # Django sends request_started and request_finished (query log reset, stale database
    # connections closed) in hops to a thread of their own, before and after the request's;
    # portal.asgi sends them in the request's hop, so an answer held in memory goes out
    # already finished, and all three ran in one thread.
    signalled: list[tuple[str, int]] = []

    def started(**kwargs):
        signalled.append(("started", threading.get_ident()))

    def finished(sender, **kwargs):
        assert sender is OneHopASGIHandler
        signalled.append(("finished", threading.get_ident()))

    scope = {
        "type": "http", "method": "GET", "path": "/health/", "raw_path": b"/health/",
        "query_string": b"", "headers": HOST, "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234), "scheme": "http", "root_path": "",
    }  # fmt: skip
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
    never = asyncio.Event()
    sent: list[tuple[str, list]] = []

    async def receive():
        message = next(messages, None)
        if message is None:
            await never.wait()  # the client stays connected
        return message

    async def send(message):
        sent.append((message["type"], list(signalled)))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        await asyncio.wait_for(application(scope, receive, send), timeout=10)
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    kind, by_then = sent[0]
    assert kind == "http.response.start"
    assert [name for name, _ in by_then] == ["started", "finished"]
    assert by_then[0][1] == by_then[1][1]
    assert [name for name, _ in signalled] == ["started", "finished"]  # once each
