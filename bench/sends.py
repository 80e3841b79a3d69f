"""Sends: how many messages one web process takes per second, and how fast they reach open
tabs, with several people sending at once, through the real server on PostgreSQL and Redis.

    SECRET_KEY=x .venv/bin/python -m bench.sends [--senders 8] [--messages 1000] [--tabs 20]
                                                 [--memory 10000] [--socket-messages 300]
                                                 [--profile DIR]

Staff send as the chat modal does (htmx POST with a send key); each sender has its own
signed-in session. Rows:

0. sockets open: the send the goal names, one staff member sending back to back with the
   sockets the chat modal keeps open (their chat's /ws/staff/threads/<id>/, the project list's
   /ws/staff/inbox/) and one customer tab of that thread (/ws/thread/) open; each POST waits
   for its frame in the customer tab before the next. Server CPU per send (the sockets'
   renders included) and its ratio to the bare view; --profile records it too
   (DIR/sockets.txt).
1. distinct threads: `--senders` senders, each into its own customer's thread, back to back,
   `--messages` in all: sends per second, POST latency p50/p99, server CPU per send and its
   ratio to the same run's bare Django view.
2. one thread: the same senders all into one thread. Appends to one thread take its row lock
   in turn, so this row states what that lock costs against row 1.
3. live: `--tabs` customer tabs open (spread over the senders' threads) while the senders
   send; each message is timed from the start of its POST to its frame in every open tab of
   its thread (p50/p99).
4. memory: the server's resident memory before and after `--memory` more sends (0: skip).

With --profile DIR, py-spy records the server during row 1 (DIR/sends.svg, and the raw
collapsed stacks in DIR/sends.txt for bench.profile_top).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import signal
import time
from pathlib import Path

import aiohttp

from bench import harness
from bench.live import Tabs, _cookie_header

MARK = re.compile(r"LB(\d+)E")


class Sender:
    """One staff member's signed-in session, sending into threads by POST as htmx does."""

    def __init__(self, http: aiohttp.ClientSession, server, session, name: str):
        self.http, self.server, self.name = http, server, name
        self.headers = {
            "Cookie": _cookie_header(session),
            "X-CSRFToken": session.cookies["csrftoken"],
            "HX-Request": "true",
            "Referer": server.url + "/",
        }
        self.count = itertools.count()

    async def send(self, thread_id: int, body: str) -> float:
        """POST one message; returns the time the POST started."""
        started = time.perf_counter()
        data = {"body": body, "key": f"{self.name}-{next(self.count)}"}
        url = f"{self.server.url}/staff/chat/{thread_id}/send/"
        async with self.http.post(url, data=data, headers=self.headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"send answered {response.status}")
        return started


async def _burst(senders, targets, total: int, marks=None, on_sent=None) -> tuple[float, list]:
    """Every sender sends total/len(senders) messages back to back into its target thread.
    Returns (wall seconds, POST latencies in ms)."""
    per_sender = total // len(senders)
    latencies: list[float] = []
    numbers = itertools.count(1)

    async def run(sender, thread_id) -> None:
        for i in range(per_sender):
            mark = next(numbers) if marks is not None else 0
            body = f"Send LB{mark}E {harness.body(i)}" if marks is not None else harness.body(i)
            started = await sender.send(thread_id, body)
            latencies.append((time.perf_counter() - started) * 1000)
            if marks is not None:
                marks[mark] = (thread_id, started)

    began = time.perf_counter()
    await asyncio.gather(*(run(s, t) for s, t in zip(senders, targets, strict=True)))
    return time.perf_counter() - began, latencies


async def run(args, server, world, threads) -> list[list[str]]:
    from bench.live import _counters

    staff = [harness.signed_in_session(server.url, user) for user in world.senders]
    floor = harness.bare_cost(server, staff[0])
    rows = [["measure", "figure", "× bare"]]
    rows.append(["bare Django view, server CPU/request", f"{floor.cpu_ms:.2f} ms", "1.00"])
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        senders = [Sender(http, server, s, f"s{i}") for i, s in enumerate(staff)]
        n = len(senders)
        own_threads = threads[:n]
        await _burst(senders, own_threads, n * 5)  # warm-up: connections, template caches

        # 0. one sender with the chat modal's sockets and one customer tab open
        rows += await _sockets_row(args, server, http, world, threads, staff[0], floor)

        # 1. distinct threads
        profiler = (
            harness.py_spy(server.pid, args.profile / "sends.txt", rate=250, mode="--gil")
            if args.profile
            else None
        )
        cpu_before, counters_before = server.cpu_seconds(), _counters(args)
        wall, latencies = await _burst(senders, own_threads, args.messages)
        cpu = (server.cpu_seconds() - cpu_before) * 1000 / args.messages
        xacts, commands = (
            (b - a) / args.messages for a, b in zip(counters_before, _counters(args), strict=True)
        )
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        rows += [
            [f"{n} senders, distinct threads: sends/s", f"{args.messages / wall:.0f}", ""],
            [
                "  POST p50 / p99",
                f"{harness.percentile(latencies, 50):.1f} / "
                f"{harness.percentile(latencies, 99):.1f} ms",
                "",
            ],
            ["  server CPU per send", f"{cpu:.2f} ms", f"{cpu / floor.cpu_ms:.2f}"],
            ["  transactions, Redis commands per send", f"{xacts:.1f}, {commands:.1f}", ""],
        ]
        distinct_rate = args.messages / wall

        # 2. one thread: the row lock in turn
        wall, latencies = await _burst(senders, [threads[0]] * n, args.messages)
        rows += [
            [
                f"{n} senders, one thread: sends/s",
                f"{args.messages / wall:.0f} ({args.messages / wall / distinct_rate:.0%} of "
                "distinct)",
                "",
            ],
            [
                "  POST p50 / p99",
                f"{harness.percentile(latencies, 50):.1f} / "
                f"{harness.percentile(latencies, 99):.1f} ms",
                "",
            ],
        ]

        # 3. live: tabs open on the senders' threads while they send
        tabs_by_thread = {}
        for i in range(args.tabs):
            thread_id = own_threads[i % n]
            if thread_id not in tabs_by_thread:
                index = threads.index(thread_id)
                session = world.customer_sessions.get(index) or harness.signed_in_session(
                    server.url, world.customers[index].user
                )
                tabs_by_thread[thread_id] = Tabs(
                    http, server, _cookie_header(session), "/ws/thread/"
                )
            await tabs_by_thread[thread_id].open(1)
        await asyncio.sleep(0.5)
        marks: dict[int, tuple[int, float]] = {}
        await _burst(senders, own_threads, args.live_messages, marks=marks)
        frame_ms = []
        for mark, (thread_id, started) in marks.items():
            arrivals = await tabs_by_thread[thread_id].wait_for(mark, timeout=30)
            frame_ms.extend((at - started) * 1000 for at in arrivals)
        for tabs in tabs_by_thread.values():
            await tabs.close()
        rows.append(
            [
                f"{n} senders, {args.tabs} tabs: POST → frame p50 / p99",
                f"{harness.percentile(frame_ms, 50):.1f} / "
                f"{harness.percentile(frame_ms, 99):.1f} ms",
                "",
            ]
        )

        # 4. memory over many sends
        if args.memory:
            before = server.rss_kb()
            await _burst(senders, own_threads, args.memory)
            after = server.rss_kb()
            rows.append(
                [
                    f"server memory over {args.memory:,} sends",
                    f"{before / 1024:.1f} → {after / 1024:.1f} MB",
                    "",
                ]
            )
    return rows


async def _sockets_row(args, server, http, world, threads, staff_session, floor) -> list:
    from bench.live import _counters

    thread_id = threads[0]
    staff_cookie = _cookie_header(staff_session)
    # Row 3 opens this customer's tabs with the same session (a sign-in link is used once).
    customer = world.customer_sessions[0] = harness.signed_in_session(
        server.url, world.customers[0].user
    )
    tab = Tabs(http, server, _cookie_header(customer), "/ws/thread/")
    chat = Tabs(http, server, staff_cookie, f"/ws/staff/threads/{thread_id}/")
    inbox = Tabs(http, server, staff_cookie, "/ws/staff/inbox/")
    for sockets in (tab, chat, inbox):
        await sockets.open(1)
    await asyncio.sleep(0.5)
    sender = Sender(http, server, staff_session, "sock")
    marks = itertools.count(10_000_000)
    latencies: list[float] = []
    warmup = 20

    async def one(i: int) -> None:
        mark = next(marks)
        started = await sender.send(thread_id, f"Send LB{mark}E {harness.body(i)}")
        await tab.wait_for(mark, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)

    for i in range(warmup):
        await one(i)
    latencies.clear()
    profiler = (
        harness.py_spy(server.pid, args.profile / "sockets.txt", rate=250, mode="--gil")
        if args.profile
        else None
    )
    cpu_before, counters_before = server.cpu_seconds(), _counters(args)
    began = time.perf_counter()
    for i in range(args.socket_messages):
        await one(i)
    wall = time.perf_counter() - began
    await asyncio.sleep(0.2)  # the staff sockets' last renders
    cpu = (server.cpu_seconds() - cpu_before) * 1000 / args.socket_messages
    xacts, commands = (
        (b - a) / args.socket_messages
        for a, b in zip(counters_before, _counters(args), strict=True)
    )
    if profiler:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    for sockets in (tab, chat, inbox):
        await sockets.close()
    return [
        [
            "1 sender, sockets open (chat, list, 1 customer tab): sends/s",
            f"{args.socket_messages / wall:.0f}",
            "",
        ],
        [
            "  POST → customer frame p50 / p99",
            f"{harness.percentile(latencies, 50):.1f} / {harness.percentile(latencies, 99):.1f} ms",
            "",
        ],
        [
            "  server CPU per send, sockets' work included",
            f"{cpu:.2f} ms",
            f"{cpu / floor.cpu_ms:.2f}",
        ],
        ["  transactions, Redis commands per send", f"{xacts:.1f}, {commands:.1f}", ""],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--messages", type=int, default=1000, help="sends per throughput row")
    parser.add_argument("--tabs", type=int, default=20, help="customer tabs in the live row")
    parser.add_argument(
        "--socket-messages", type=int, default=300, help="sends in the sockets-open row"
    )
    parser.add_argument("--live-messages", type=int, default=400)
    parser.add_argument("--memory", type=int, default=10000, help="sends for the memory row")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy into DIR")
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    database_url, redis_url = harness.setup_django()
    args.database_url, args.redis_url = database_url, redis_url
    from messaging.models import Thread
    from tests.factories import StaffUserFactory

    print(f"bench.sends · {harness.machine()} · server {args.server}")
    harness.reset(redis_url)
    world = harness.build_world(customers=args.senders)
    world.senders = [world.staff] + [
        StaffUserFactory(username=f"bench-staff-{i}", password=None) for i in range(1, args.senders)
    ]
    world.customer_sessions = {}
    threads = [Thread.objects.get(customer=c).pk for c in world.customers]
    for customer in world.customers:
        harness.fill_thread(customer=customer, staff=world.staff, entries=60)
    harness.analyze()
    server = harness.start_server(
        database_url, redis_url, server=args.server, EMAIL_NOTIFICATION_DELAY_SECONDS="120"
    )
    try:
        rows = asyncio.run(run(args, server, world, threads))
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
