"""R11: the 381 KB PNG of 7000 x 7000 16-bit pixels (issue 18 item 3) -> refused from its
header, in the web process and in the worker.

Before: decoding it in the reply form's validation added ~560 MB to the web process and took
6 s of CPU (six in parallel, 2.8 GB), before the send limit was checked, so a bad send key
decoded all five files, answered 400 and never counted.

(a) The real ASGI server (uvicorn, tests/servers.py) on the test database; Sarah signs in
through her magic link and posts the picture six times at once from the reply box. Measured
on the server process: its peak resident memory over what it held before (VmHWM, reset
first) and the CPU it spent. (b) Five of them with a malformed send key, then sends until
the limit (lowered to 8 a minute for the server): the bad-key posts count. (c) The same
picture texted in (MMS), fetched from the fake Twilio by the real task in this process, from
a stranger (the text kept for staff, the picture refused) and from Sarah (the text shown
with a note): this process's peak memory and CPU for each.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from sesame.utils import get_token

from messaging.models import Entry
from notifications.inbound import actions as inbound_actions
from notifications.models import InboundMessage
from tests.images import peak_rss_mb, peak_rss_reset, png_bomb, rss_mb
from tests.servers import UNLIMITED_RATES, AsgiServer, database_url

pytestmark = pytest.mark.django_db(transaction=True)
PARALLEL = 6


def _signed_in(server: AsgiServer, user) -> tuple[requests.Session, str]:
    """A session signed in through the real magic link, and its CSRF token."""
    session = requests.Session()
    page = session.get(f"{server.url}/login/magic/?sesame={get_token(user)}", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed = session.post(
        f"{server.url}/login/magic/",
        data={"csrfmiddlewaretoken": token, "sesame": get_token(user)},
        headers={"Referer": f"{server.url}/login/magic/"},
        allow_redirects=False,
        timeout=10,
    )
    assert signed.status_code == 302, signed.text[:300]
    return session, session.cookies["csrftoken"]


def _send(server, session, csrf, *, key: str, files: int = 1) -> requests.Response:
    return session.post(
        f"{server.url}/messages/send/",
        data={"body": "the deck", "key": key},
        files=[("photos", (f"deck{n}.png", png_bomb(), "image/png")) for n in range(files)],
        headers={"X-CSRFToken": csrf, "HX-Request": "true", "Referer": f"{server.url}/"},
        timeout=60,
    )


def _in_process(action) -> tuple[float, float, object]:
    """(peak MB over the start, CPU seconds, result) of running `action` here."""
    peak_rss_reset()
    before = rss_mb()
    cpu = time.process_time()
    result = action()
    return peak_rss_mb() - before, time.process_time() - cpu, result


def test_r11_a_decompression_bomb_is_refused_from_its_header(
    customer, thread, fake_twilio, figures
):
    bomb = png_bomb()
    assert 380_000 < len(bomb) < 390_000
    rates = {**UNLIMITED_RATES, "RATE_SENDS_PER_USER": "8/m"}
    server = AsgiServer(
        database_url=database_url(connection.settings_dict),
        env={"SECRET_KEY": django_settings.SECRET_KEY, **rates},
    ).start()
    try:
        session, csrf = _signed_in(server, customer.user)
        # (a) six at once
        peak_rss_reset(server.pid)
        before_mb = server.rss_kb() / 1024
        cpu = server.cpu_seconds()
        started = time.perf_counter()
        answers: list[requests.Response] = []
        threads = [
            threading.Thread(
                target=lambda n=n: answers.append(_send(server, session, csrf, key=f"bomb-{n}"))
            )
            for n in range(PARALLEL)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        grew = peak_rss_mb(server.pid) - before_mb
        spent = server.cpu_seconds() - cpu
        assert [a.status_code for a in answers] == [400] * PARALLEL
        assert all("too large a picture" in a.text for a in answers)
        assert grew < 100, f"the web process grew {grew:.0f} MB"

        # (b) a bad key with five of them: a 400 that counts (6 sends so far; the limit is 8)
        bad = [_send(server, session, csrf, key="not a key!", files=5) for _ in range(2)]
        over = _send(server, session, csrf, key="after")
        assert [b.status_code for b in bad] == [400, 400] and over.status_code == 429
        assert all("send key is malformed" in b.text for b in bad)
    finally:
        server.stop()
    assert not Entry.objects.exists()

    # (c) texted in: from a stranger, then from Sarah
    costs = {}
    for who, sender in (("stranger", "+15555550999"), ("Sarah", "+15555550123")):
        url = fake_twilio.add_media(bomb, "image/png")
        form, signature = fake_twilio.inbound(
            "http://127.0.0.1:8000/webhooks/twilio/sms/",
            sender=sender,
            body="Is this rot?",
            media=[(url, "image/png")],
        )
        inbound = InboundMessage.objects.create(
            channel=InboundMessage.Channel.SMS,
            provider_id=form["MessageSid"],
            sender=sender,
            body="Is this rot?",
            media=[{"url": url, "content_type": "image/png"}],
            received_at=timezone.now(),
        )
        costs[who] = _in_process(
            lambda pk=inbound.pk: inbound_actions.fetch_inbound_media(inbound_id=pk)
        )
    stranger = InboundMessage.objects.get(sender="+15555550999")
    assert stranger.status == InboundMessage.Status.UNMATCHED and stranger.files == []
    assert "too large a picture" in stranger.reason
    reply = Entry.objects.get(kind=Entry.Kind.CUSTOMER_REPLY)
    assert reply.body == "Is this rot?" and reply.attachment_count == 0
    assert "too large a picture" in Entry.objects.get(kind=Entry.Kind.INTERNAL_NOTE).body
    for who, (mb, _, _) in costs.items():
        assert mb < 100, f"{who}'s MMS grew this process {mb:.0f} MB"

    figures(
        f"381 KB 16-bit PNG of 7000x7000, {PARALLEL} at once from the reply box -> "
        f"{PARALLEL} x 400 'too large a picture', web process +{grew:.0f} MB peak, "
        f"{spent:.2f} s CPU, {wall:.1f} s wall (before: ~560 MB and 6 s each, 2.8 GB for six); "
        "5 in one send with a bad key -> 400, counted (the 9th send in a minute 429); "
        f"by MMS: a stranger's text kept for staff without it +{costs['stranger'][0]:.0f} MB "
        f"{costs['stranger'][1]:.2f} s CPU, Sarah's refused, text shown with a note "
        f"+{costs['Sarah'][0]:.0f} MB {costs['Sarah'][1]:.2f} s CPU "
        "(the append and the SMS to the business included)"
    )
