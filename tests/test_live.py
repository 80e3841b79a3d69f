"""Broadcasts: after commit only, ids not HTML, staff-only entries to staff groups only, and
a dead Redis never fails a post. Runs against whichever channel layer is configured (Redis
under CI), so every layer operation of a test happens on one event loop."""

from __future__ import annotations

import asyncio

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.test import override_settings

from messaging import actions, live
from messaging.models import Entry

pytestmark = pytest.mark.django_db(transaction=True)


async def _subscribe(*groups: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


async def _nothing_for(channel: str) -> bool:
    try:
        await asyncio.wait_for(get_channel_layer().receive(channel), timeout=0.3)
    except TimeoutError:
        return True
    return False


async def test_broadcasts_carry_ids_and_only_follow_a_commit(thread, staff):
    channel = await _subscribe(live.thread_group(thread.pk, "customer"))

    @sync_to_async
    def post_then_roll_back_then_post():
        with pytest.raises(RuntimeError), transaction.atomic():
            actions.post_staff_message(thread=thread, author=staff, body="Never happened")
            raise RuntimeError
        return actions.post_staff_message(thread=thread, author=staff, body="Hello")

    entry = await post_then_roll_back_then_post()
    message = await get_channel_layer().receive(channel)
    assert message == {
        "type": "entry.appended",
        "thread_id": thread.pk,
        "entry_id": entry.pk,
        "seq": 1,
    }
    assert await _nothing_for(channel)  # the rolled-back one sent nothing


async def test_internal_notes_are_broadcast_to_staff_groups_only(thread, staff):
    customer_channel = await _subscribe(live.thread_group(thread.pk, "customer"))
    staff_channel = await _subscribe(live.thread_group(thread.pk, "staff"))
    await sync_to_async(actions.add_internal_note)(thread=thread, author=staff, body="staff only")
    assert (await get_channel_layer().receive(staff_channel))["type"] == "entry.appended"
    assert await _nothing_for(customer_channel)


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Nothing listens here: Redis is "down".
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
)
def test_posting_succeeds_when_redis_is_down(thread, staff, caplog):
    entry = actions.post_staff_message(thread=thread, author=staff, body="Still stored")
    assert Entry.objects.get(pk=entry.pk).body == "Still stored"
    assert "live broadcast" in caplog.text and "failed" in caplog.text


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # production's layer, Redis "down"
        }
    }
)
def test_posting_succeeds_when_the_pubsub_layers_redis_is_down(thread, staff, caplog):
    entry = actions.post_staff_message(thread=thread, author=staff, body="Still stored")
    assert Entry.objects.get(pk=entry.pk).body == "Still stored"
    assert "live broadcast" in caplog.text and "failed" in caplog.text


@pytest.mark.redis
def test_broadcasts_from_synchronous_code_keep_one_redis_connection(thread, staff, settings):
    # A Celery task or the test client posts from plain synchronous code: its broadcasts must
    # not open (and drop) a connection to Redis each, which on a non-zero database also costs
    # a SELECT per send (tests/test_send_cost.py). The connection stays, the same one (its
    # last command the script that publishes to every group, messaging.live).
    db = str(int(settings.REDIS_URL.rsplit("/", 1)[-1] or 0))
    server = redis.Redis.from_url(settings.REDIS_URL)

    def publishers() -> set[str]:
        clients = server.client_list()
        return {c["id"] for c in clients if c["cmd"] == "evalsha" and c["db"] == db}

    actions.post_staff_message(thread=thread, author=staff, body="First")
    first = publishers()
    actions.post_staff_message(thread=thread, author=staff, body="Second")
    # (More than one when an earlier test's settings made the process a new channel layer.)
    assert first, "the connection was closed after the broadcast"
    assert publishers() == first
    server.close()


@pytest.mark.redis
async def test_live_groups_of_two_redis_databases_never_hear_each_other(settings):
    # Redis Pub/Sub ignores the database number: a site on another database of the same Redis
    # server, sending to its own thread 1, must not reach this site's thread 1 sockets.
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from portal.settings import channel_layer_prefix

    here = settings.REDIS_URL
    base, db = here.rsplit("/", 1)
    elsewhere = f"{base}/{(int(db or 0) + 1) % 16}"  # nothing is stored: a publish only

    def layer(url: str) -> RedisPubSubChannelLayer:
        return RedisPubSubChannelLayer(hosts=[url], prefix=channel_layer_prefix(url))

    listening, other_site, same_site = layer(here), layer(elsewhere), layer(here)
    try:
        channel = await listening.new_channel()
        group = live.thread_group(1, "customer")
        await listening.group_add(group, channel)
        await asyncio.sleep(0.1)  # the subscription is in place
        await other_site.group_send(group, {"type": "entry.appended", "seq": 7})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(listening.receive(channel), timeout=0.5)
        channel = await listening.new_channel()  # (a cancelled receive gives its channel up)
        await listening.group_add(group, channel)
        await asyncio.sleep(0.1)
        await same_site.group_send(group, {"type": "entry.appended", "seq": 8})
        received = await asyncio.wait_for(listening.receive(channel), timeout=5)
        assert received["seq"] == 8
    finally:
        for each in (listening, other_site, same_site):
            await each.flush()
