"""portal.asgi's lanes: how many requests that read and that write run at once (bench.mixed,
docs/performance.md "Goal 1"). Through the real ASGI application: a request waits for its
lane before its thread runs."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import HttpCommunicator
from django.test import override_settings

from portal.asgi import application, lane_for

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
