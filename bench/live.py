"""Live: from a staff member's POST to the frame in the customer's open tabs, through the real
server on PostgreSQL and Redis.

    SECRET_KEY=x .venv/bin/python -m bench.live [--tabs 1,20] [--messages 300] [--idle 1000]
                                                [--customers 1000] [--ws websockets]

1. Floor: the same run's bare Django view (server CPU per request), and what one message
   costs the services with no framework at all (a bare INSERT+COMMIT, a Redis PUBLISH to a
   subscriber).
2. Latency: with N customer tabs open (WebSockets on /ws/thread/) and the sender's own chat
   and list sockets, the staff user POSTs messages one after another to the chat's send URL
   as htmx does; each is timed from the start of its POST to its frame in every tab.
   p50/p95/p99 per N, the server's CPU per message, database transactions per message
   (pg_stat_database) and Redis commands per message (INFO, server-wide).
3. Idle sockets, first, on the fresh process: one socket for each of --customers different
   customers (each signed in through the magic link): server memory per socket, HTTP still
   answering; then closed.
4. Fan-out: --idle tabs of ONE customer (one thread), and --fanouts messages
   sent to that thread one after another: the first and the last tab's frame after the POST
   and the server's CPU from the POST to the last frame (medians).

Every row runs on deploy/web.sh as production does (websockets' sans-I/O implementation).
`--ws websockets` (or wsproto) runs the same rows again, in the same run, on deploy/web.sh
with `--ws websockets` appended (uvicorn takes the later one) and prints a column for each:
the table that chose production's implementation (issue 24, goal 5).

Every tab offers permessage-deflate, as browsers do; deploy/web.sh declines it.
`--deflate-column` runs the rows once more with uvicorn's default (accepted): the table behind
that choice. `--profile FILE` records the server with py-spy during the fan-out's messages.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import time
from pathlib import Path

import aiohttp

from bench import harness

MARK = re.compile(r"LB(\d+)E")


def _cookie_header(session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class Tabs:
    """N open sockets of one signed-in person, each recording when each message arrived."""

    # Offered in the handshake, as browsers do on every socket: permessage-deflate (window
    # bits); the server decides whether to use it (deploy/web.sh does not).
    compress = 15

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
                    compress=self.compress,
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
        mark = args.offset + i + 1
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


async def customers_row(server, http, *, cookies: list[str]) -> tuple[float, float]:
    """One socket for each of len(cookies) different customers: (server memory per socket
    in KB, the bare view's latency in ms with them all open). They stay open."""
    rss_before = server.rss_kb()
    gate = asyncio.Semaphore(50)
    tabs = [Tabs(http, server, cookie, "/ws/thread/") for cookie in cookies]

    async def open_one(t: Tabs) -> None:
        async with gate:
            await t.open(1, concurrency=1)

    await asyncio.gather(*(open_one(t) for t in tabs))
    await asyncio.sleep(1)
    per_socket = (server.rss_kb() - rss_before) / max(len(cookies), 1)
    started = time.perf_counter()
    async with http.get(f"{server.url}{harness.BARE_PATH}") as response:
        assert response.status == 200
    http_ms = (time.perf_counter() - started) * 1000
    return per_socket, http_ms, tabs


async def fanout_row(
    server, http, *, args, staff_session, customer_cookie, thread_id, count, repeat
):
    """`count` tabs of ONE customer, and `repeat` messages to them one after another: per
    message, the first and the last tab's frame after the start of the POST, and the server's
    CPU from the POST to the last frame (the median of each)."""
    tabs = Tabs(http, server, customer_cookie, "/ws/thread/")
    await tabs.open(count)
    await asyncio.sleep(1)
    headers = {
        "Cookie": _cookie_header(staff_session),
        "X-CSRFToken": staff_session.cookies["csrftoken"],
        "HX-Request": "true",
        "Referer": server.url + "/",
    }
    firsts, lasts, cpus = [], [], []
    profiler = None
    if args.profile:
        # The fan-out's messages alone, not the sockets' opening (where the 0.6 ms a tab goes).
        profiler = harness.py_spy(server.process.pid, args.profile, rate=500, mode="--gil")
        await asyncio.sleep(1)  # py-spy attached
    for i in range(repeat):
        mark = args.offset + 999000 + i
        await asyncio.sleep(0.5)
        cpu_before = server.cpu_seconds()
        started = time.perf_counter()
        data = {"body": f"Everyone LB{mark}E", "key": f"bench-fanout-{mark}"}
        url = f"{server.url}/staff/chat/{thread_id}/send/"
        async with http.post(url, data=data, headers=headers) as response:
            assert response.status == 200, response.status
        arrivals = await tabs.wait_for(mark, timeout=90)
        cpus.append((server.cpu_seconds() - cpu_before) * 1000)
        firsts.append((min(arrivals) - started) * 1000)
        lasts.append((max(arrivals) - started) * 1000)
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)
    await tabs.close()
    median = statistics.median
    return median(firsts), median(lasts), median(cpus)


async def run(args, server, world, thread_id, sessions) -> dict[str, str]:
    """Every row on one server: {label: figure}."""
    staff_session, customer_session, idle_cookies = sessions
    floor = harness.bare_cost(server, staff_session)
    rows = {"bare Django view, server CPU/request": f"{floor.cpu_ms:.2f} ms"}
    rows["services alone (INSERT+COMMIT, PUBLISH→SUBSCRIBE)"] = f"{args.services:.2f} ms"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        # First, on the fresh process (as bench.mixed measures it): the customers' sockets,
        # closed again before the rows below.
        if idle_cookies:
            per_socket, http_ms, idle_tabs = await customers_row(server, http, cookies=idle_cookies)
            n = len(idle_cookies)
            rows[f"{n:,} sockets of {n:,} different customers: memory per socket"] = (
                f"{per_socket:.1f} KB"
            )
            rows[f"  HTTP (bare view) with {n:,} sockets open"] = f"{http_ms:.1f} ms"
            for tabs in idle_tabs:
                await tabs.close()
            await asyncio.sleep(1)
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
            rows[f"POST → frame, {n} tab{'s' if n > 1 else ''}: p50 / p95 / p99"] = (
                f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"
            )
            rows[f"  per message ({n} tabs): server CPU, transactions, Redis commands"] = (
                f"{cpu:.1f} ms ({cpu / floor.cpu_ms:.1f}× bare), {xacts:.1f}, {commands:.1f}"
            )
        if args.idle:
            first, last, cpu = await fanout_row(
                server,
                http,
                args=args,
                staff_session=staff_session,
                customer_cookie=_cookie_header(customer_session),
                thread_id=thread_id,
                count=args.idle,
                repeat=args.fanouts,
            )
            n = args.idle
            # (Their memory is not a figure: the customers' sockets' freed memory is reused.)
            label = f"one message to {n:,} tabs of ONE customer: first / last frame"
            rows[f"{label} (median of {args.fanouts})"] = f"{first:.0f} / {last:.0f} ms"
            rows["  that message: server CPU from the POST to the last frame"] = (
                f"{cpu:.0f} ms ({cpu / floor.cpu_ms:.0f}× bare)"
            )
    return rows


# deploy/web.sh's WebSocket implementation, and the ones `--ws` can set beside it (deploy/web.sh
# hands its arguments to uvicorn, where a later --ws wins).
PRODUCTION_WS = "websockets-sansio"
OTHER_WS = ("websockets", "wsproto")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", default="1,20", help="customer tabs per latency row")
    parser.add_argument("--messages", type=int, default=300, help="timed messages per row")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--idle", type=int, default=1000, help="tabs of one customer for the fan-out (0: skip)"
    )
    parser.add_argument(
        "--customers", type=int, default=1000, help="sockets of different customers (0: skip)"
    )
    parser.add_argument("--fanouts", type=int, default=3, help="messages to the --idle tabs")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy (--gil) the server during the fan-out's messages into this file "
        "(collapsed stacks, for bench.profile_top); its cost is in the fan-out's figures",
    )
    parser.add_argument(
        "--ws",
        default="",
        help="also run every row with deploy/web.sh --ws IMPL (comma-separated: "
        f"{', '.join(OTHER_WS)}), one column each beside production's",
    )
    parser.add_argument(
        "--deflate-column",
        action="store_true",
        help="also run every row on deploy/web.sh --ws-per-message-deflate true (uvicorn's "
        "default), one column beside production's",
    )
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)
    args.tabs = [int(n) for n in args.tabs.split(",")]
    others = [w for w in args.ws.split(",") if w]
    if any(w not in OTHER_WS for w in others):
        harness.refuse(f"--ws takes {', '.join(OTHER_WS)}")
    if others and args.server != harness.PRODUCTION_SERVER:
        harness.refuse("--ws runs deploy/web.sh with another WebSocket implementation")

    database_url, redis_url = harness.setup_django()
    args.database_url, args.redis_url = database_url, redis_url
    import resource

    from messaging.models import Thread

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * (args.idle + args.customers) + 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, wanted)), hard))
    print(f"bench.live · {harness.machine()} · server {args.server}")
    harness.reset(redis_url)
    world = harness.build_world(customers=1 + args.customers)
    harness.fill_thread(customer=world.customers[0], staff=world.staff, entries=60)
    harness.analyze()
    args.services = service_floor(redis_url)
    thread_id = Thread.objects.get(customer=world.customers[0]).pk

    if args.server == harness.PRODUCTION_SERVER:
        columns = [(f"deploy/web.sh ({PRODUCTION_WS})", ())]
        columns += [(f"deploy/web.sh --ws {w}", ("--ws", w)) for w in others]
        if args.deflate_column:
            flag = ("--ws-per-message-deflate", "true")
            columns.append((f"deploy/web.sh {' '.join(flag)}", flag))
    else:
        columns = [(args.server, ())]
    results: list[dict[str, str]] = []
    sessions = None
    for column, (name, extra) in enumerate(columns):
        args.offset = column * 10_000_000  # marks and send keys of their own on each server
        if column:
            args.profile = None  # --profile records production's column only
        print(f"running on {name}", flush=True)
        server = harness.start_server(
            database_url,
            redis_url,
            server=args.server,
            args=extra,
            EMAIL_NOTIFICATION_DELAY_SECONDS="120",
        )
        try:
            if sessions is None:  # signed in once, through the first server: kept by Redis
                sessions = _sign_in(server, world, args.customers)
            results.append(asyncio.run(run(args, server, world, thread_id, sessions)))
        finally:
            server.stop()
    rows = [["measure", *(name for name, _ in columns)]]
    for label in results[0]:
        rows.append([label, *(r.get(label, "") for r in results)])
    print(harness.table(rows))
    return 0


def _sign_in(server, world, customers: int):
    """(staff session, the fan-out customer's session, a Cookie header for each of the other
    customers), each through the real magic link."""
    from concurrent.futures import ThreadPoolExecutor

    def sign_in(user):
        return harness.signed_in_session(server.url, user)

    with ThreadPoolExecutor(8) as pool:
        idle = list(pool.map(sign_in, [c.user for c in world.customers[1 : 1 + customers]]))
    return (
        sign_in(world.staff),
        sign_in(world.customers[0].user),
        [_cookie_header(s) for s in idle],
    )


if __name__ == "__main__":
    raise SystemExit(main())
