"""R1: Twilio replays one signed inbound text twenty times at once (its retries, or a proxy
that doubled them). Exactly one entry lands in the thread, exactly one broadcast reaches each
group that shows it, and the business is told exactly once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test import Client

from messaging import live
from messaging.models import Entry
from notifications.models import Delivery, InboundMessage

URL = "/webhooks/twilio/sms/"
# Twilio signs the public URL it was configured with: SITE_URL plus the path.
SIGNED_URL = f"http://127.0.0.1:8000{URL}"
SARAH = "+15555550123"
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)  # 10am in New York: nothing held
REPLAYS = 20
END = {"type": "r1.end"}


def replay_concurrently(form: dict, signature: str) -> list[int]:
    """POST the same signed webhook from REPLAYS threads released together; their codes."""
    codes: list[int] = []
    gate = threading.Barrier(REPLAYS)

    def post() -> None:
        try:
            gate.wait()
            response = Client().post(URL, form, HTTP_X_TWILIO_SIGNATURE=signature)
            codes.append(response.status_code)
        finally:
            connection.close()

    workers = [threading.Thread(target=post) for _ in range(REPLAYS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return codes


async def listen_while(groups: list[str], act) -> tuple[object, dict[str, list[dict]]]:
    """Join one channel to each group, run `act` (sync, in a thread), then read every frame
    each channel got. Each broadcast is sent before its request returns, so an end marker sent
    afterwards arrives behind all of them: no waiting on the clock for frames that never come.
    (Every layer operation happens on this one event loop.)"""
    layer = get_channel_layer()
    channels = {}
    for group in groups:
        channels[group] = await layer.new_channel()
        await layer.group_add(group, channels[group])
    result = await sync_to_async(act, thread_sensitive=False)()
    frames: dict[str, list[dict]] = {}
    for group, channel in channels.items():
        await layer.send(channel, END)
        frames[group] = []
        while (message := await layer.receive(channel)) != END:
            frames[group].append(message)
        await layer.group_discard(group, channel)
    return result, frames


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_replays_make_one_entry_one_broadcast_and_one_delivery(
    fake_twilio, customer, thread, figures
):
    form, signature = fake_twilio.inbound(SIGNED_URL, sender=SARAH, body="Replayed at once")
    groups = [
        live.thread_group(thread.pk, "customer"),
        live.thread_group(thread.pk, "staff"),
        live.STAFF_INBOX_GROUP,
    ]
    with time_machine.travel(DAYTIME, tick=True):
        codes, frames = async_to_sync(listen_while)(
            groups, lambda: replay_concurrently(form, signature)
        )

    # Every replay is answered 200, so Twilio stops retrying.
    assert codes == [200] * REPLAYS
    entry = Entry.objects.get()
    assert (entry.thread_id, entry.body, entry.idempotency_key) == (
        thread.pk,
        "Replayed at once",
        f"twilio:{form['MessageSid']}",
    )
    assert InboundMessage.objects.get().entry == entry

    # One frame per group that shows the entry: the customer's page, the staff chat, the
    # staff inbox. (The staff chat also hears that the business's SMS went: a different frame.)
    appended = {
        group: [m for m in got if m["type"] == "entry.appended" and m["thread_id"] == thread.pk]
        for group, got in frames.items()
    }
    assert {group: len(got) for group, got in appended.items()} == dict.fromkeys(groups, 1)
    for got in appended.values():
        assert got[0] == {
            "type": "entry.appended",
            "thread_id": thread.pk,
            "entry_id": entry.pk,
            "seq": entry.seq,
        }

    # What the product makes of a customer's text: one delivery telling the business (by SMS,
    # as she has a phone and the business takes texts), sent once to the fake Twilio.
    delivery = Delivery.objects.get()
    assert (delivery.entry, delivery.audience, delivery.channel) == (entry, "business", "sms")
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1
    to_business = [m for m in fake_twilio.messages if m.to == customer.business.sms_number]
    assert len(to_business) == 1 and len(fake_twilio.messages) == 1
    assert to_business[0].sid == delivery.provider_id

    broadcasts = min(len(got) for got in appended.values())
    assert broadcasts == max(len(got) for got in appended.values())
    figures(
        f"{len(codes)} replays ({codes.count(200)} x 200) -> {Entry.objects.count()} entry, "
        f"{broadcasts} broadcast (to each of {len(groups)} groups), "
        f"{Delivery.objects.count()} delivery ({len(to_business)} SMS to the business)"
    )
