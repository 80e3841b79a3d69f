"""Broadcasts: after commit only, ids not HTML, staff-only entries to staff groups only, and
a dead Redis never fails a post."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.test import override_settings

from messaging import actions, live
from messaging.models import Entry


def test_broadcasts_wait_for_commit_and_carry_ids(
    thread, staff, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.thread_group(thread.pk, "customer"), channel)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        entry = actions.post_staff_message(thread=thread, author=staff, body="Hello")
    # Registered, not yet sent: nothing reaches the group before the commit.
    with pytest.raises(TimeoutError):
        async_to_sync(_receive_with_timeout)(layer, channel)
    for callback in callbacks:
        callback()
    message = async_to_sync(layer.receive)(channel)
    assert message == {
        "type": "entry.appended",
        "thread_id": thread.pk,
        "entry_id": entry.pk,
        "seq": 1,
    }


def test_a_rolled_back_append_broadcasts_nothing(thread, staff, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        actions.post_staff_message(thread=thread, author=staff, body="Never happened")
        raise RuntimeError
    assert callbacks == []
    assert not Entry.objects.exists()


def test_internal_notes_are_broadcast_to_staff_groups_only(
    thread, staff, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    customer_channel = async_to_sync(layer.new_channel)()
    staff_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.thread_group(thread.pk, "customer"), customer_channel)
    async_to_sync(layer.group_add)(live.thread_group(thread.pk, "staff"), staff_channel)
    with django_capture_on_commit_callbacks(execute=True):
        actions.add_internal_note(thread=thread, author=staff, body="staff only")
    assert async_to_sync(layer.receive)(staff_channel)["type"] == "entry.appended"
    with pytest.raises(TimeoutError):
        async_to_sync(_receive_with_timeout)(layer, customer_channel)


async def _receive_with_timeout(layer, channel):
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.2)


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Nothing listens here: Redis is "down".
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
)
def test_posting_succeeds_when_redis_is_down(
    thread, staff, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        entry = actions.post_staff_message(thread=thread, author=staff, body="Still stored")
    assert Entry.objects.get(pk=entry.pk).body == "Still stored"
    assert "live broadcast" in caplog.text and "failed" in caplog.text
