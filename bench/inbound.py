"""Inbound texts: Twilio's signed webhook, from POST to 200 and to the frame on the customer's
open page, through the real server on PostgreSQL and Redis.

    SECRET_KEY=x .venv/bin/python -m bench.inbound [--messages 300]

Each text is a new MessageSid from the customer's number, signed as Twilio signs it; the
customer has one tab open on /ws/thread/. Reported: p50/p99 of the webhook's answer, p50/p99
until the text's frame reached the tab, the server's CPU per text, and the bare view's.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from bench import harness
from bench.live import Tabs, _cookie_header

AUTH_TOKEN = "bench-auth-token"


async def run(args, server, world) -> list[list[str]]:
    customer = world.customers[0]
    session = harness.signed_in_session(server.url, customer.user)
    floor = harness.bare_cost(server, session)
    url = f"{server.url}/webhooks/twilio/sms/"
    validator = RequestValidator(AUTH_TOKEN)
    answers, frames = [], []
    async with aiohttp.ClientSession() as http:
        tab = Tabs(http, server, _cookie_header(session), "/ws/thread/")
        await tab.open(1)
        cpu_before = server.cpu_seconds()
        for i in range(args.warmup + args.messages):
            if i == args.warmup:
                cpu_before = server.cpu_seconds()
            form = {
                "MessageSid": "SM" + uuid.uuid4().hex,
                "AccountSid": "AC" + "0" * 32,
                "From": customer.phone,
                "To": "+15555550142",
                "Body": f"Texted LB{i + 1}E {harness.body(i)}",
                "NumMedia": "0",
            }
            headers = {
                "X-Twilio-Signature": validator.compute_signature(url, form),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            started = time.perf_counter()
            async with http.post(url, data=urlencode(form), headers=headers) as response:
                assert response.status == 200, await response.text()
            answered = time.perf_counter()
            (arrived,) = await tab.wait_for(i + 1, timeout=10)
            if i >= args.warmup:
                answers.append((answered - started) * 1000)
                frames.append((arrived - started) * 1000)
        cpu = (server.cpu_seconds() - cpu_before) * 1000 / args.messages
        await tab.close()
    p = harness.percentile
    return [
        ["measure", "figure"],
        ["bare Django view, server CPU/request", f"{floor.cpu_ms:.2f} ms"],
        ["webhook POST → 200: p50 / p99", f"{p(answers, 50):.1f} / {p(answers, 99):.1f} ms"],
        [
            "webhook POST → frame on her page: p50 / p99",
            f"{p(frames, 50):.1f} / {p(frames, 99):.1f} ms",
        ],
        ["server CPU per text", f"{cpu:.1f} ms ({cpu / floor.cpu_ms:.1f}× bare)"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)
    database_url, redis_url = harness.setup_django()
    print(f"bench.inbound · {harness.machine()} · server {args.server}")
    harness.reset(redis_url)
    world = harness.build_world(customers=1)
    harness.fill_thread(customer=world.customers[0], staff=world.staff, entries=60)
    harness.analyze()
    server = harness.start_server(
        database_url,
        redis_url,
        server=args.server,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+15555550142",
        TWILIO_API_BASE_URL="http://127.0.0.1:9",  # nothing is sent to Twilio in the request
    )
    try:
        rows = asyncio.run(run(args, server, world))
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
