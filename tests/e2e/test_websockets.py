"""WebSockets through the real server (uvicorn, as in production; tests/servers.py) and the
Redis channel layer, with a real websocket client (aiohttp): what WebsocketCommunicator cannot
show, such as the close code a client actually receives and the group membership left behind
in Redis."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest
import redis
from django.test import Client

from messaging import live

pytestmark = [pytest.mark.redis]

BAD_FRAMES = [
    "not json",
    json.dumps(["a", "list"]),
    json.dumps({"type": "shout"}),
    json.dumps({"type": "resume", "last_seq": "abc"}),
    json.dumps({"type": "resume", "last_seq": 10_000}),
    json.dumps({"type": "resume", "last_seq": 0, "pad": "x" * 5000}),
]


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def _bad_frames(url: str, origin: str, cookie: str, frames: list[str]) -> list[int]:
    codes = []
    async with aiohttp.ClientSession() as http:
        for frame in frames:
            ws = await http.ws_connect(url, headers={"Cookie": cookie, "Origin": origin})
            await ws.send_str(frame)
            message = await ws.receive(timeout=5)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            codes.append(ws.close_code)
            await ws.close()
    return codes


def _group_key(group: str) -> bytes:
    return f"asgi:group:{group}".encode()  # channels_redis's key for a group's members


def _members(group: str) -> int:
    return redis.Redis.from_url(os.environ["REDIS_URL"]).zcard(_group_key(group))


def _forget(group: str) -> None:
    # Ids restart with every test database: a group of the same name may hold members left
    # by earlier tests' sockets (they expire after a day).
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(_group_key(group))


def test_bad_frames_close_with_our_codes_and_leave_no_one_in_the_group(server, customer, thread):
    group = live.thread_group(thread.pk, "customer")
    _forget(group)
    url = server.url.replace("http", "ws") + "/ws/thread/"
    frames = BAD_FRAMES * 10
    codes = asyncio.run(_bad_frames(url, server.url, _session_cookie(customer.user), frames))
    assert set(codes) <= {4008, 4009}
    assert codes.count(4009) == 10  # the oversized one
    # Every refused socket left the group (the server reports the close a moment later).
    for _ in range(50):
        if _members(group) == 0:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert _members(group) == 0


def test_the_staff_inbox_refuses_bad_frames_the_same_way(server, staff):
    _forget(live.STAFF_INBOX_GROUP)
    url = server.url.replace("http", "ws") + "/ws/staff/inbox/"
    codes = asyncio.run(_bad_frames(url, server.url, _session_cookie(staff), ["nope"] * 5))
    assert codes == [4008] * 5
    for _ in range(50):
        if _members(live.STAFF_INBOX_GROUP) == 0:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert _members(live.STAFF_INBOX_GROUP) == 0
