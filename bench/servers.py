"""Servers: the same app through daphne, uvicorn (uvloop, httptools) and granian, on the same
machine, PostgreSQL and Redis, in one run, to choose the production ASGI server by figures.

    SECRET_KEY=x .venv/bin/python -m bench.servers [--rounds 2] [--sockets 100] [--messages 30]

For each server (rounds alternate the order, so a burst of load elsewhere does not fall on one
server only), with one server process serving `bench.asgi` (the app plus the bare view):

1. HTTP, one request at a time: the bare Django view (the floor) and the customer Messages page
   (session, user, six queries, a template of 50 entries): client latency p50 / p99 and the
   server's CPU per request, from its process group's /proc counters.
2. HTTP, concurrent: requests per second for 4 s with 16 clients on the bare view and 8 on the
   Messages page (the client runs on the same 2 cores, so it takes its share too).
3. WebSocket: N customer sockets open on /ws/thread/ (memory per socket from the server's
   RSS), and the staff user POSTs messages one after another as the chat modal does; each is
   timed from the start of its POST to its frame in the last of the N sockets, with the
   server's CPU per message.

Figures from a round are kept per server; the table prints the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp

from bench import harness
from bench.live import Tabs, _cookie_header

SERVERS = ("daphne", "uvicorn", "granian")


def group_rss_kb(pgid: int) -> int:
    """Resident memory of every process of a process group (granian serves from a child
    process, so the group leader alone would miss it)."""
    from pathlib import Path

    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _sequential(server, session, path: str, *, n: int) -> harness.Cost:
    def get() -> None:
        session.get(server.url + path, timeout=10).raise_for_status()

    return harness.measure(server, get, n=n)


async def _throughput(server, cookie: str, path: str, *, clients: int, seconds: float) -> float:
    """Requests per second answered 200 with `clients` requests in flight for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers={"Cookie": cookie}) as http:

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with http.get(server.url + path) as response:
                    await response.read()
                    assert response.status == 200, response.status
                    done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return done / (time.perf_counter() - started)


async def _websocket(server, *, staff_session, customer_cookie, thread_id, args, offset):
    """(p50 and p99 ms from POST to the last socket's frame, server CPU ms per message, KB of
    server memory per open socket)."""
    staff_cookie = _cookie_header(staff_session)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        rss_before = group_rss_kb(server.pid)
        tabs = Tabs(http, server, customer_cookie, "/ws/thread/")
        await tabs.open(args.sockets)
        await asyncio.sleep(0.5)
        per_socket = (group_rss_kb(server.pid) - rss_before) / args.sockets
        headers = {
            "Cookie": staff_cookie,
            "X-CSRFToken": staff_session.cookies["csrftoken"],
            "HX-Request": "true",
            "Referer": server.url + "/",
        }
        send_url = f"{server.url}/staff/chat/{thread_id}/send/"
        lasts = []
        cpu_before = server.cpu_seconds()
        for i in range(args.warmup + args.messages):
            if i == args.warmup:
                cpu_before = server.cpu_seconds()
            mark = offset + i + 1
            started = time.perf_counter()
            data = {"body": f"Fan-out LB{mark}E", "key": f"servers-{mark}"}
            async with http.post(send_url, data=data, headers=headers) as response:
                assert response.status == 200, response.status
            arrivals = await tabs.wait_for(mark, timeout=30)
            if i >= args.warmup:
                lasts.append((max(arrivals) - started) * 1000)
        cpu = (server.cpu_seconds() - cpu_before) * 1000 / args.messages
        await tabs.close()
    return harness.percentile(lasts, 50), harness.percentile(lasts, 99), cpu, per_socket


def measure_server(name: str, *, args, world, thread_id, offset: int) -> dict[str, float]:
    server = harness.start_server(
        args.database_url,
        args.redis_url,
        server=name,
        EMAIL_NOTIFICATION_DELAY_SECONDS="120",
        RATE_SENDS_PER_USER="1000000/h",
        RATE_LOGIN_LINKS_PER_CLIENT="1000000/h",
        RATE_LOGIN_LINKS_PER_ADDRESS="1000000/h",
    )
    try:
        # One-time links are tied to last_login, which the previous server's sign-in moved.
        for user in (world.customers[0].user, world.staff):
            user.refresh_from_db()
        customer = harness.signed_in_session(server.url, world.customers[0].user)
        staff = harness.signed_in_session(server.url, world.staff)
        bare = _sequential(server, customer, harness.BARE_PATH, n=args.requests)
        page = _sequential(server, customer, "/messages/", n=args.requests // 2)
        cookie = _cookie_header(customer)
        bare_rps = asyncio.run(
            _throughput(server, cookie, harness.BARE_PATH, clients=16, seconds=args.seconds)
        )
        page_rps = asyncio.run(
            _throughput(server, cookie, "/messages/", clients=8, seconds=args.seconds)
        )
        ws_p50, ws_p99, ws_cpu, ws_kb = asyncio.run(
            _websocket(
                server,
                staff_session=staff,
                customer_cookie=cookie,
                thread_id=thread_id,
                args=args,
                offset=offset,
            )
        )
        rss_mb = group_rss_kb(server.pid) / 1024
    finally:
        server.stop()
    return {
        "bare_p50": bare.p50_ms,
        "bare_p99": bare.p99_ms,
        "bare_cpu": bare.cpu_ms,
        "page_p50": page.p50_ms,
        "page_p99": page.p99_ms,
        "page_cpu": page.cpu_ms,
        "bare_rps": bare_rps,
        "page_rps": page_rps,
        "ws_p50": ws_p50,
        "ws_p99": ws_p99,
        "ws_cpu": ws_cpu,
        "ws_kb": ws_kb,
        "rss_mb": rss_mb,
    }


ROWS = [
    ("bare view, 1 at a time: p50 / p99 ms", "bare_p50", "bare_p99", "{:.2f} / {:.2f}"),
    ("bare view: server CPU per request, ms", "bare_cpu", None, "{:.2f}"),
    ("bare view, 16 concurrent: requests/s", "bare_rps", None, "{:,.0f}"),
    ("Messages page, 1 at a time: p50 / p99 ms", "page_p50", "page_p99", "{:.1f} / {:.1f}"),
    ("Messages page: server CPU per request, ms", "page_cpu", None, "{:.1f}"),
    ("Messages page, 8 concurrent: requests/s", "page_rps", None, "{:,.0f}"),
    ("WebSocket: POST → last of N sockets, p50 / p99 ms", "ws_p50", "ws_p99", "{:.1f} / {:.1f}"),
    ("WebSocket: server CPU per message, ms", "ws_cpu", None, "{:.1f}"),
    ("WebSocket: memory per open socket, KB", "ws_kb", None, "{:.1f}"),
    ("server RSS at the end, MB", "rss_mb", None, "{:.0f}"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=400, help="sequential bare requests")
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput figure")
    parser.add_argument("--sockets", type=int, default=100, help="open customer sockets")
    parser.add_argument("--messages", type=int, default=30, help="timed messages")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    names = [s for s in args.servers.split(",") if s]

    args.database_url, args.redis_url = harness.setup_django()
    from messaging.models import Thread

    print(f"bench.servers · {harness.machine()}")
    harness.reset(args.redis_url)
    world = harness.build_world(customers=1)
    harness.fill_thread(customer=world.customers[0], staff=world.staff, entries=60)
    harness.analyze()
    thread_id = Thread.objects.get(customer=world.customers[0]).pk

    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    offset = 0
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else list(reversed(names))
        for name in order:
            print(f"round {round_ + 1}: {name}", flush=True)
            results[name].append(
                measure_server(name, args=args, world=world, thread_id=thread_id, offset=offset)
            )
            offset += 1000

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    rows = [["", *names]]
    for label, key, key2, fmt in ROWS:
        cells = []
        for name in names:
            values = [median(name, key)] + ([median(name, key2)] if key2 else [])
            cells.append(fmt.format(*values))
        rows.append([label.replace("N sockets", f"{args.sockets} sockets"), *cells])
    print()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
