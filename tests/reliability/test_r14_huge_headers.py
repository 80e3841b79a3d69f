"""R14: huge headers on the open inbound email webhook (issue 18 item 2). One email with
100,000 addresses in To (1.8 MB) once kept a web process busy about seven minutes. Each
attack here is a real Postmark inbound payload, posted with the webhook's basic auth, at the
issue's size and up to 30 MB of headers (the issue's figure); each is a reply from Sarah,
so it must also still land in her thread. Time and Python memory (tracemalloc's
peak, the request included) per attack."""

from __future__ import annotations

import datetime as dt
import json
import time
import tracemalloc

import pytest
import time_machine
from django.conf import settings as django_settings

from messaging.models import Entry
from notifications.reply_addresses import reply_address
from tests.notifications.test_inbound_email import AUTH, payload, raw_payload

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2025, 5, 15, 14, 0, tzinfo=dt.UTC)
URL = "/anymail/postmark/inbound/"


def addresses(count: int) -> list[str]:
    return [f"u{n}@example.com" for n in range(count)]


def json_to(thread_id: int, count: int, message_id: str) -> str:
    """Postmark's parsed payload: To and ToFull with `count` addresses, then ours."""
    to = [*addresses(count), reply_address(thread_id)]
    data = payload(to=reply_address(thread_id), text="Thursday works.", message_id=message_id)
    data["To"] = ", ".join(to)
    data["ToFull"] = [{"Email": a, "Name": "", "MailboxHash": ""} for a in to]
    return json.dumps(data)


def raw_email(thread_id: int, message_id: str, *, to_count: int, references: int) -> str:
    """A raw message (Postmark's RawEmail) with a To of `to_count` addresses on one line."""
    to = ", ".join([*addresses(to_count), reply_address(thread_id)])
    refs = " ".join(f"<id{n}@x>" for n in range(references))
    raw = (
        f"From: Sarah Mitchell <sarah@example.com>\nTo: {to}\nReferences: {refs}\n"
        f"Subject: Re: Thursday\nMessage-ID: {message_id}\n\nThursday works.\n"
    )
    return json.dumps(raw_payload(raw.encode(), to=reply_address(thread_id)))


def many_headers(thread_id: int, message_id: str, *, count: int, size: int) -> str:
    """Postmark's Headers list padded with `count` headers of `size` characters."""
    data = payload(to=reply_address(thread_id), text="Thursday works.", message_id=message_id)
    data["Headers"] += [{"Name": f"X-Pad-{n}", "Value": "x" * size} for n in range(count)]
    return json.dumps(data)


def run(client, make, number: int) -> tuple[int, float, int, int]:
    """(status, seconds, peak bytes, body bytes): the time without tracemalloc, the memory
    from a second copy of the attack (another Message-ID: the same work again) under it."""
    body = make(f"<r14-{number}-a@mail.example>")
    started = time.perf_counter()
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    seconds = time.perf_counter() - started
    second = make(f"<r14-{number}-b@mail.example>")
    tracemalloc.start()
    client.post(URL, data=second, content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return response.status_code, seconds, peak, len(body)


def test_huge_headers_cost_seconds_and_the_reply_still_lands(
    client, fake_postmark, customer, thread, figures
):
    limit = django_settings.INBOUND_EMAIL_MAX_BYTES
    t = thread.pk
    attacks = {
        "To of 100,000 (1.8 MB), JSON": lambda mid: json_to(t, 100_000, mid),
        "To of 100,000 (1.8 MB), raw": lambda mid: raw_email(
            t, mid, to_count=100_000, references=0
        ),
        "30 MB of To and References, raw": lambda mid: raw_email(
            t, mid, to_count=1_350_000, references=160_000
        ),
        "30 MB in 14,000 headers of 2 KB, JSON": lambda mid: many_headers(
            t, mid, count=14_000, size=2_000
        ),
        "one header of 30 MB, JSON": lambda mid: many_headers(t, mid, count=1, size=30_000_000),
    }
    results = {}
    with time_machine.travel(DAYTIME, tick=True):
        for number, (name, make) in enumerate(attacks.items()):
            results[name] = run(client, make, number)
            landed = Entry.objects.filter(kind="customer_reply", body="Thursday works.")
            assert landed.count() == 2 * (number + 1), name  # both copies, each time

    assert {status for status, _, _, _ in results.values()} == {200}
    assert all(size <= limit for _, _, _, size in results.values())
    assert max(seconds for _, seconds, _, _ in results.values()) < 15

    def one(name: str) -> str:
        _, seconds, peak, size = results[name]
        return f"{name} [{size / 1e6:.1f} MB body]: {seconds:.1f} s, {peak / 1e6:.0f} MB"

    figures(
        f"{len(attacks)} inbound emails with huge headers, all 200 and her reply in the thread "
        f"each time: {'; '.join(one(name) for name in attacks)}"
    )
