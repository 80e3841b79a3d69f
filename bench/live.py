"""Live: from a staff member's POST to the frame in the customer's open tabs, through the real
server on PostgreSQL and Redis.

    SECRET_KEY=x .venv/bin/python -m bench.live [--tabs 1,20] [--messages 300] [--idle 1000]

1. Floor: the same run's bare Django view (server CPU per request), and what one message
   costs the services with no framework at all (a bare INSERT+COMMIT, a Redis PUBLISH to a
   subscriber).
2. Latency: with N customer tabs open (WebSockets on /ws/thread/) and the sender's own chat
   and list sockets, the staff user POSTs messages one after another to the chat's send URL
   as htmx does; each is timed from the start of its POST to its frame in every tab.
   p50/p95/p99 per N, the server's CPU per message, database transactions per message
   (pg_stat_database) and Redis commands per message (INFO, server-wide).
3. Idle sockets: N customer sockets on the one server process: memory per socket, HTTP still
   answering, and one message reaching all of them (first and last frame after the POST).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

import aiohttp

from bench import harness

MARK = re.compile(r"LB(\d+)E")


def _cookie_header(session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class Tabs:
    """N open sockets of one signed-in person, each recording when each message arrived."""

    def __init__(self, http: aiohttp.ClientSession, server, cookie: str, path: str):
        self.http, self.server, self.cookie, self.path = http, server, cookie, path
        self.sockets: list = []
        self.arrived: dict[int, list[float]] = {}
        self.tasks: list[asyncio.Task] = []

    async def open(self, count: int, *, concurrency: int = 50) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                ws = await self.http.ws_connect(
                    self.server.url.replace("http", "ws") + self.path,
                    headers={"Cookie": self.cookie, "Origin": self.server.url},
                    heartbeat=None,
                    max_msg_size=0,
                )
                self.sockets.append(ws)
                self.tasks.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one() for _ in range(count)))

    async def _read(self, ws) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            for mark in MARK.findall(message.data):
                self.arrived.setdefault(int(mark), []).append(now)

    async def wait_for(self, mark: int, *, timeout: float) -> list[float]:
        deadline = time.perf_counter() + timeout
        while len(self.arrived.get(mark, [])) < len(self.sockets):
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"message {mark}: {len(self.arrived.get(mark, []))} of {len(self.sockets)} tabs"
                )
            await asyncio.sleep(0.001)
        return self.arrived[mark]

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        for task in self.tasks:
            task.cancel()
        self.sockets.clear()


def _counters(args) -> tuple[int, int]:
    """(committed transactions of this database, Redis commands processed), read on
    connections of their own (each costs one transaction and one command, subtracted)."""
    import psycopg
    import redis

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        # The statistics a backend sees are a snapshot per transaction: ask for fresh ones.
        conn.execute("SELECT pg_stat_clear_snapshot()")
        (xacts,) = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    commands = redis.Redis.from_url(args.redis_url).info("stats")["total_commands_processed"]
    return xacts, commands


def service_floor(redis_url: str, n: int = 300) -> float:
    """Median ms of what one message needs from the services alone: INSERT+COMMIT of a small
    row, then a PUBLISH that a subscriber receives."""
    import redis
    from django.db import connection

    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub()
    sub.subscribe("bench-floor")
    sub.get_message(timeout=1)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id serial, body text)")
    times = []
    for i in range(n):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("INSERT INTO bench_floor (body) VALUES (%s)", [f"message {i}"])
            cursor.execute("COMMIT")
        client.publish("bench-floor", "x")
        sub.get_message(timeout=1)
        times.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_floor")
    return harness.percentile(times, 50)


async def latency_row(server, http, *, staff_session, customer_cookie, thread_id, tabs_n, args):
    """Open tabs_n customer tabs, send args.messages timed messages, close the tabs."""
    staff_cookie = _cookie_header(staff_session)
    tabs = Tabs(http, server, customer_cookie, "/ws/thread/")
    own = Tabs(http, server, staff_cookie, f"/ws/staff/threads/{thread_id}/")
    inbox = Tabs(http, server, staff_cookie, "/ws/staff/inbox/")
    await tabs.open(tabs_n)
    await own.open(1)
    await inbox.open(1)
    send_url = f"{server.url}/staff/chat/{thread_id}/send/"
    headers = {
        "Cookie": staff_cookie,
        "X-CSRFToken": staff_session.cookies["csrftoken"],
        "HX-Request": "true",
        "Referer": server.url + "/",
    }
    latencies = []
    cpu_before, counters_before = server.cpu_seconds(), None
    for i in range(args.warmup + args.messages):
        if i == args.warmup:
            cpu_before, counters_before = server.cpu_seconds(), _counters(args)
        mark = i + 1
        started = time.perf_counter()
        data = {"body": f"Live LB{mark}E {harness.body(i)}", "key": f"bench{tabs_n}x{mark}"}
        async with http.post(send_url, data=data, headers=headers) as response:
            assert response.status == 200, response.status
        arrivals = await tabs.wait_for(mark, timeout=10)
        if i >= args.warmup:
            latencies.extend((at - started) * 1000 for at in arrivals)
    xacts, commands = (b - a for a, b in zip(counters_before, _counters(args), strict=True))
    cpu = (server.cpu_seconds() - cpu_before) * 1000 / args.messages
    for group in (tabs, own, inbox):
        await group.close()
    return latencies, cpu, xacts / args.messages, commands / args.messages


async def idle_row(server, http, *, staff_session, customer_cookie, thread_id, count):
    rss_before = server.rss_kb()
    tabs = Tabs(http, server, customer_cookie, "/ws/thread/")
    await tabs.open(count)
    await asyncio.sleep(1)
    rss_after = server.rss_kb()
    started = time.perf_counter()
    async with http.get(f"{server.url}{harness.BARE_PATH}") as response:
        assert response.status == 200
    http_ms = (time.perf_counter() - started) * 1000
    headers = {
        "Cookie": _cookie_header(staff_session),
        "X-CSRFToken": staff_session.cookies["csrftoken"],
        "HX-Request": "true",
        "Referer": server.url + "/",
    }
    started = time.perf_counter()
    data = {"body": "Everyone LB999999E", "key": "bench-idle"}
    async with http.post(f"{server.url}/staff/chat/{thread_id}/send/", data=data, headers=headers):
        pass
    arrivals = await tabs.wait_for(999999, timeout=90)
    first, last = (min(arrivals) - started) * 1000, (max(arrivals) - started) * 1000
    await tabs.close()
    return (rss_after - rss_before) / count, http_ms, first, last


async def run(args, server, world, thread_id) -> list[list[str]]:
    staff_session = harness.signed_in_session(server.url, world.staff)
    customer_session = harness.signed_in_session(server.url, world.customers[0].user)
    floor = harness.bare_cost(server, staff_session)
    rows = [["measure", "figure"]]
    rows.append(["bare Django view, server CPU/request", f"{floor.cpu_ms:.2f} ms"])
    rows.append(["services alone (INSERT+COMMIT, PUBLISH→SUBSCRIBE)", f"{args.services:.2f} ms"])
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for n in args.tabs:
            latencies, cpu, xacts, commands = await latency_row(
                server,
                http,
                staff_session=staff_session,
                customer_cookie=_cookie_header(customer_session),
                thread_id=thread_id,
                tabs_n=n,
                args=args,
            )
            p50, p95, p99 = (harness.percentile(latencies, p) for p in (50, 95, 99))
            rows.append(
                [
                    f"POST → frame, {n} tab{'s' if n > 1 else ''}: p50 / p95 / p99",
                    f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms",
                ]
            )
            rows.append(
                [
                    f"  per message ({n} tabs): server CPU, transactions, Redis commands",
                    f"{cpu:.1f} ms ({cpu / floor.cpu_ms:.1f}× bare), {xacts:.1f}, {commands:.1f}",
                ]
            )
        if args.idle:
            per_socket, http_ms, first, last = await idle_row(
                server,
                http,
                staff_session=staff_session,
                customer_cookie=_cookie_header(customer_session),
                thread_id=thread_id,
                count=args.idle,
            )
            rows.append([f"{args.idle:,} idle sockets: memory per socket", f"{per_socket:.1f} KB"])
            rows.append([f"  HTTP with {args.idle:,} sockets open", f"{http_ms:.1f} ms"])
            rows.append(
                [
                    f"  one message to all {args.idle:,}: first / last frame",
                    f"{first:.0f} / {last:.0f} ms",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", default="1,20", help="customer tabs per latency row")
    parser.add_argument("--messages", type=int, default=300, help="timed messages per row")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--idle", type=int, default=1000, help="idle sockets (0: skip)")
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)
    args.tabs = [int(n) for n in args.tabs.split(",")]

    database_url, redis_url = harness.setup_django()
    args.database_url, args.redis_url = database_url, redis_url
    import resource

    from messaging.models import Thread

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.idle + 256)), hard))
    print(f"bench.live · {harness.machine()} · server {args.server}")
    harness.reset(redis_url)
    world = harness.build_world(customers=1)
    harness.fill_thread(customer=world.customers[0], staff=world.staff, entries=60)
    harness.analyze()
    args.services = service_floor(redis_url)
    thread_id = Thread.objects.get(customer=world.customers[0]).pk
    server = harness.start_server(
        database_url, redis_url, server=args.server, EMAIL_NOTIFICATION_DELAY_SECONDS="120"
    )
    try:
        rows = asyncio.run(run(args, server, world, thread_id))
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
