"""Live latency benchmark: how long from a staff member's POST to the frame in the customer's tab?

    SECRET_KEY=x .venv/bin/python -m bench.live_latency

Starts the real server (daphne serving portal.asgi, one process, DEBUG off) on PostgreSQL and
Redis, signs a customer and a staff user in through HTTP (magic link; staff login form), and:

1. Floor: on the same services, a bare psycopg INSERT+COMMIT of a small row into an ordinary
   (WAL-logged) table, and a Redis PUBLISH -> SUBSCRIBE round trip. The floor is the sum of
   the two medians: what one message would cost with no framework at all.
2. Latency: with N customer tabs (WebSockets on /ws/thread/, all the same customer) plus the
   sender's own chat modal and project list sockets, the staff user POSTs messages one after
   another to /staff/chat/<thread>/send/ (as htmx does); each is timed from the start of its
   POST to the frame carrying its text arriving in each customer tab. p50/p95/p99 per N.
3. Idle connections: opens 1,000 customer WebSockets to the one server process, prints the
   server's RSS before and after (MB, KB per connection), checks it still answers HTTP and
   delivers a message to them, then closes them.

Goals (issue): p50 at most 10x the floor; p99 under 100 ms on loopback; 1,000 idle connections
held by one server process, with its memory per connection printed.

Per phase it also prints, from outside the server (no instrumentation in the app), where the
time goes: server CPU per message (/proc), PostgreSQL sessions and transactions per message
(pg_stat_database of the bench database), and Redis commands per message (INFO; server-wide,
so approximate when other clients use the same Redis).

Defaults: DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_live (created if missing;
flushed and loaded with the demo data at the start: its name must contain "live"), and
REDIS_URL=redis://127.0.0.1:6379/7 (FLUSHDB at the start and the end: index 0 is refused).
DB_CONN_MAX_AGE is passed to the server as the shell has it (unset: 0, the app's default);
--conn-max-age overrides it.

Options: --messages N (timed messages per row, default 300), --warmup N (20), --clients 1,20
(customer tabs per row), --idle N (idle connections, default 1000; 0 skips), --no-staff-sockets
(leave the sender's modal and project list closed), --floor-iterations N (300). To try a change
without editing the app: --conn-max-age S, --server-env NAME=VALUE (repeatable; e.g. another
DJANGO_SETTINGS_MODULE with PYTHONPATH), --server-app MODULE:ATTR (another ASGI application);
--py-spy DIR records the server during each latency row (collapsed stacks; pip install py-spy).

Exit status 0 whatever the figures (PASS/MISS is printed), 1 if the benchmark itself failed,
2 when refusing to run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porchlight_live"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
# Databases other people and other benchmarks use: never touched.
FORBIDDEN_DATABASES = {"porchlight", "test_porchlight", "porchlight_bench", "porchlight_notify"}
CUSTOMER_EMAIL = "sarah@example.com"
STAFF_USERNAME = "mike"
STAFF_PASSWORD = "porchlight-demo"  # noqa: S105 - the demo command's documented password
FLOOR_TABLE = "bench_live_floor"
FLOOR_CHANNEL = "bench-live-floor"

# Every wait is bounded.
SERVER_START_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
FRAME_TIMEOUT = 5.0  # one message, every tab
CONNECT_TIMEOUT = 20.0
FANOUT_TIMEOUT = 90.0  # one message to 1,000 tabs
OVERALL_TIMEOUT = 540.0
MAX_MISSED = 10  # messages that never reached every tab before a row is abandoned

TOKEN_RE = re.compile(r"LB([0-9a-f]{8})m(\d+)E")


# -- set-up (synchronous, before the event loop) --------------------------------------------


def _refuse(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(2)


def _prepare_environment() -> tuple[str, str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.pop("DEBUG", None)  # the server runs as in production; so does this process
    if not os.environ.get("SECRET_KEY"):
        _refuse("set SECRET_KEY (any value; the server and the login links share it)")
    database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    db = urllib.parse.urlsplit(database_url)
    name = db.path.lstrip("/")
    if not db.scheme.startswith("postgres"):
        _refuse("needs PostgreSQL: DATABASE_URL=postgres://user@host:5432/porchlight_live")
    if name in FORBIDDEN_DATABASES or "live" not in name:
        _refuse(
            f"refusing to use database {name!r}: the benchmark flushes it. Use a database of "
            "its own with 'live' in its name (default porchlight_live)"
        )
    redis_db = urllib.parse.urlsplit(redis_url).path.lstrip("/") or "0"
    if redis_db == "0":
        _refuse("refusing Redis DB index 0 (FLUSHDB at start and end); e.g. redis://…/7")
    return database_url, redis_url


def _psycopg_conninfo(database_url: str, dbname: str | None = None) -> str:
    url = urllib.parse.urlsplit(database_url)
    parts = {
        "host": url.hostname or "127.0.0.1",
        "port": str(url.port or 5432),
        "user": urllib.parse.unquote(url.username or "postgres"),
        "dbname": dbname or url.path.lstrip("/"),
    }
    if url.password:
        parts["password"] = urllib.parse.unquote(url.password)
    return " ".join(f"{k}={v}" for k, v in parts.items())


def _create_database_if_missing(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(
        _psycopg_conninfo(database_url, "postgres"), autocommit=True, connect_timeout=5
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            print(f"  creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class World:
    thread_id: int
    customer_token: str


def _build_world() -> World:
    """Empty the bench database, load the demo (Sarah, her thread, staff user mike)."""
    from django.core.management import call_command
    from django.db import connection
    from sesame.utils import get_token

    from messaging import actions
    from portal.models import Customer

    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("demo", stdout=quiet)
    customer = Customer.objects.select_related("user").get(email=CUSTOMER_EMAIL)
    thread = actions.ensure_thread(customer=customer)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    world = World(thread_id=thread.pk, customer_token=get_token(customer.user))
    connection.close()
    return world


def _last_seq(thread_id: int) -> int:
    """Read in a worker thread (never on the event loop); closes its connection."""
    from django.db import connection

    from messaging.models import Thread

    try:
        return Thread.objects.values_list("last_seq", flat=True).get(pk=thread_id)
    finally:
        connection.close()


def _flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """daphne serving portal.asgi in one child process."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        conn_max_age: str | None,
        extra_env: dict[str, str] | None = None,
        app: str = "portal.asgi:application",
    ):
        self.app = app
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.gettempdir()) / f"porchlight-live-bench-{self.port}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": self.url,
        }
        self.env.pop("DEBUG", None)
        if conn_max_age is not None:
            self.env["DB_CONN_MAX_AGE"] = conn_max_age
        self.env.update(extra_env or {})
        self.conn_max_age = self.env.get("DB_CONN_MAX_AGE") or "0"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/login/", timeout=1)  # noqa: S310
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"server did not start; see {self.log}:\n{self.log.read_text()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


# -- counters read from outside the server --------------------------------------------------


@dataclass
class Counters:
    cpu_s: float
    pg: dict
    redis_total: int
    redis_cmds: dict


class Probe:
    """Server CPU (/proc), PostgreSQL activity on the bench database (pg_stat_database) and
    Redis commands (INFO; server-wide)."""

    def __init__(self, server: Server, database_url: str, redis_url: str) -> None:
        self.server = server
        self.conninfo = _psycopg_conninfo(database_url)
        self.redis_url = redis_url

    def read(self) -> Counters:
        import psycopg
        import redis

        # A fresh session each time: statistics snapshots are per transaction.
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, sessions, tup_inserted, tup_updated "
                "FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        pg = dict(zip(("xacts", "sessions", "inserted", "updated"), row, strict=True))
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            total = int(client.info("stats")["total_commands_processed"])
            cmds = {
                key.removeprefix("cmdstat_"): int(value["calls"])
                for key, value in client.info("commandstats").items()
            }
        finally:
            client.close()
        return Counters(self.server.cpu_seconds(), pg, total, cmds)

    async def aread(self) -> Counters:
        # Statistics reach pg_stat_database when backends report (at exit, or within 1 s).
        return await asyncio.wait_for(asyncio.to_thread(self.read), 15)


@dataclass
class PerMessage:
    server_cpu_ms: float
    pg_sessions: float
    pg_xacts: float
    pg_inserted: float
    redis_cmds: float
    redis_top: list[tuple[str, float]]


def _per_message(before: Counters, after: Counters, n: int) -> PerMessage:
    cmds = {
        name: (after.redis_cmds.get(name, 0) - before.redis_cmds.get(name, 0)) / n
        for name in after.redis_cmds
    }
    top = sorted(((k, v) for k, v in cmds.items() if v >= 0.05), key=lambda kv: -kv[1])[:8]
    return PerMessage(
        server_cpu_ms=(after.cpu_s - before.cpu_s) * 1000 / n,
        pg_sessions=(after.pg["sessions"] - before.pg["sessions"]) / n,
        pg_xacts=(after.pg["xacts"] - before.pg["xacts"]) / n,
        pg_inserted=(after.pg["inserted"] - before.pg["inserted"]) / n,
        redis_cmds=(after.redis_total - before.redis_total) / n,
        redis_top=top,
    )


# -- floor -----------------------------------------------------------------------------------


def _floor_postgres(conninfo: str, iterations: int, warmup: int) -> list[float]:
    """INSERT+COMMIT of a small row into an ordinary table (WAL and commit flush included,
    as for the app's own rows), on one open connection."""
    import psycopg

    times = []
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id bigserial PRIMARY KEY, "
            "body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.commit()
        for i in range(warmup + iterations):
            t0 = time.perf_counter()
            conn.execute(
                f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)",  # noqa: S608 - constant
                (f"floor row {i}",),
            )
            conn.commit()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    return times


def _drop_floor_table(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")


async def _floor_redis(redis_url: str, iterations: int, warmup: int) -> list[float]:
    """PUBLISH on one connection until a subscriber on another has received it."""
    from redis import asyncio as aioredis

    publisher = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    subscriber = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    pubsub = subscriber.pubsub()
    times = []
    try:
        await pubsub.subscribe(FLOOR_CHANNEL)
        confirm = await pubsub.get_message(timeout=5)
        if not confirm or confirm["type"] != "subscribe":
            raise RuntimeError(f"Redis SUBSCRIBE not confirmed: {confirm!r}")
        for i in range(warmup + iterations):
            payload = f"floor {i}".encode()
            t0 = time.perf_counter()
            await publisher.publish(FLOOR_CHANNEL, payload)
            deadline = t0 + 5
            while True:
                message = await pubsub.get_message(
                    timeout=max(0.01, deadline - time.perf_counter())
                )
                if message and message["type"] == "message" and message["data"] == payload:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("Redis PUBLISH never reached the subscriber")
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        await pubsub.aclose()
        await subscriber.aclose()
        await publisher.aclose()
    return times


@dataclass
class Floor:
    pg_ms: list[float] = field(default_factory=list)
    redis_ms: list[float] = field(default_factory=list)

    @property
    def pg_median(self) -> float:
        return statistics.median(self.pg_ms)

    @property
    def redis_median(self) -> float:
        return statistics.median(self.redis_ms)

    @property
    def total(self) -> float:
        return self.pg_median + self.redis_median


async def measure_floor(conninfo: str, redis_url: str, iterations: int) -> Floor:
    warmup = max(10, iterations // 10)
    pg = await asyncio.wait_for(
        asyncio.to_thread(_floor_postgres, conninfo, iterations, warmup), 120
    )
    rd = await asyncio.wait_for(_floor_redis(redis_url, iterations, warmup), 120)
    return Floor(pg, rd)


# -- HTTP clients -----------------------------------------------------------------------------


def _hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}"[^>]*?value="([^"]*)"', html)
    if not match:
        raise RuntimeError(f"no {name!r} field in the page")
    return match.group(1)


class Browser:
    """One signed-in user agent: a cookie jar, CSRF handling, and WebSockets."""

    def __init__(self, base: str) -> None:
        import aiohttp

        self.base = base
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for an IP-address host
            connector=aiohttp.TCPConnector(limit=0),  # 1,000 WebSockets hold connections
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
        )

    def cookie(self, name: str) -> str:
        from yarl import URL

        morsel = self.session.cookie_jar.filter_cookies(URL(self.base)).get(name)
        if morsel is None:
            raise RuntimeError(f"no {name} cookie")
        return morsel.value

    def _post_headers(self, path: str) -> dict:
        return {"Origin": self.base, "Referer": f"{self.base}{path}"}

    async def login_customer(self, token: str) -> None:
        path = "/login/magic/"
        async with self.session.get(f"{self.base}{path}", params={"sesame": token}) as r:
            html = await r.text()
            if r.status != 200:
                raise RuntimeError(f"magic link page answered {r.status}")
        data = {
            "csrfmiddlewaretoken": _hidden_field(html, "csrfmiddlewaretoken"),
            "sesame": _hidden_field(html, "sesame"),
        }
        async with self.session.post(
            f"{self.base}{path}",
            data=data,
            headers=self._post_headers(path),
            allow_redirects=False,
        ) as r:
            if r.status != 302:
                raise RuntimeError(f"magic link sign-in answered {r.status}")
        self.cookie("sessionid")

    async def login_staff(self, username: str, password: str) -> None:
        path = "/staff/login/"
        async with self.session.get(f"{self.base}{path}") as r:
            html = await r.text()
        data = {
            "csrfmiddlewaretoken": _hidden_field(html, "csrfmiddlewaretoken"),
            "username": username,
            "password": password,
        }
        async with self.session.post(
            f"{self.base}{path}", data=data, headers=self._post_headers(path), allow_redirects=False
        ) as r:
            if r.status != 302:
                raise RuntimeError(f"staff sign-in answered {r.status}")
        self.cookie("sessionid")

    async def send_staff_message(self, thread_id: int, body: str) -> float:
        """POST as the chat modal's htmx form does; returns when the response has been read."""
        path = f"/staff/chat/{thread_id}/send/"
        headers = {
            **self._post_headers(f"/staff/chat/{thread_id}/"),
            "HX-Request": "true",
            "X-CSRFToken": self.cookie("csrftoken"),
        }
        data = {"body": body, "key": secrets.token_hex(16)}
        async with self.session.post(f"{self.base}{path}", data=data, headers=headers) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"staff send answered {r.status}")
        return time.perf_counter()

    async def get(self, path: str) -> int:
        async with self.session.get(f"{self.base}{path}", allow_redirects=False) as r:
            await r.read()
            return r.status

    async def close(self) -> None:
        await self.session.close()


class Tabs:
    """Open WebSockets and what arrived on them: per socket, the arrival time of each
    message token (the first frame containing it) and a frame count."""

    def __init__(self) -> None:
        self.sockets: list = []
        self.readers: list[asyncio.Task] = []
        self.seen: list[dict[str, float]] = []
        self.frames: list[int] = []
        self.changed = asyncio.Event()

    async def open(self, browser: Browser, path: str, *, resume_seq: int | None) -> int:
        index = len(self.sockets)
        ws = await asyncio.wait_for(
            browser.session.ws_connect(
                f"{browser.base.replace('http', 'ws', 1)}{path}",
                origin=browser.base,
                max_msg_size=16 * 1024 * 1024,
            ),
            CONNECT_TIMEOUT,
        )
        self.sockets.append(ws)
        self.seen.append({})
        self.frames.append(0)
        if resume_seq is not None:
            await ws.send_json({"type": "resume", "last_seq": resume_seq})
        self.readers.append(asyncio.create_task(self._read(index, ws)))
        return index

    async def _read(self, index: int, ws) -> None:
        import aiohttp

        async for message in ws:  # answers the server's pings while it waits
            if message.type == aiohttp.WSMsgType.TEXT:
                now = time.perf_counter()
                self.frames[index] += 1
                for match in TOKEN_RE.finditer(message.data):
                    self.seen[index].setdefault(match.group(0), now)
                self.changed.set()
            elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        self.changed.set()

    async def wait_until(self, predicate, timeout: float) -> bool:
        """Wait (at most `timeout` s) until predicate() holds; False on timeout."""
        deadline = time.perf_counter() + timeout
        while not predicate():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            self.changed.clear()
            if predicate():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    def have(self, indexes, token: str) -> bool:
        return all(token in self.seen[i] for i in indexes)

    def open_count(self, indexes) -> int:
        return sum(1 for i in indexes if not self.sockets[i].closed)

    async def close(self, indexes=None, *, concurrency: int = 50) -> None:
        indexes = list(range(len(self.sockets)) if indexes is None else indexes)
        gate = asyncio.Semaphore(concurrency)

        async def close_one(i: int) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.sockets[i].close(), 5)

        await asyncio.gather(*(close_one(i) for i in indexes))
        for i in indexes:
            self.readers[i].cancel()
        await asyncio.gather(*(self.readers[i] for i in indexes), return_exceptions=True)


# -- the phases -------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    """Percentile by the nearest-rank method on sorted data (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class LatencyResult:
    clients: int
    messages: int
    every_tab_ms: list[float]
    slowest_tab_ms: list[float]
    post_ms: list[float]
    staff_echo_ms: list[float]
    missed: int
    per_message: PerMessage
    wall_s: float


class Run:
    def __init__(self, args, server: Server, world: World, database_url: str, redis_url: str):
        self.args = args
        self.server = server
        self.world = world
        self.conninfo = _psycopg_conninfo(database_url)
        self.redis_url = redis_url
        self.probe = Probe(server, database_url, redis_url)
        self.run_id = secrets.token_hex(4)
        self.sent = 0

    def token(self) -> str:
        self.sent += 1
        return f"LB{self.run_id}m{self.sent}E"

    async def last_seq(self) -> int:
        return await asyncio.wait_for(asyncio.to_thread(_last_seq, self.world.thread_id), 10)

    async def sign_in(self) -> tuple[Browser, Browser]:
        customer = Browser(self.server.url)
        staff = Browser(self.server.url)
        await customer.login_customer(self.world.customer_token)
        await staff.login_staff(STAFF_USERNAME, STAFF_PASSWORD)
        return customer, staff

    async def http_reference(self, requests: int = 100, warmup: int = 10) -> list[float]:
        """GET /login/ as an anonymous visitor: Django's request path with a template and no
        database work. Not a goal; it says what one HTTP round trip through the stack costs."""
        browser = Browser(self.server.url)
        times = []
        try:
            for i in range(warmup + requests):
                t0 = time.perf_counter()
                status = await asyncio.wait_for(browser.get("/login/"), HTTP_TIMEOUT)
                if status != 200:
                    raise RuntimeError(f"GET /login/ answered {status}")
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000)
        finally:
            await browser.close()
        return times

    async def latency(self, customer: Browser, staff: Browser, clients: int) -> LatencyResult:
        args = self.args
        tabs = Tabs()
        seq = await self.last_seq()
        tab_ids = [await tabs.open(customer, "/ws/thread/", resume_seq=seq) for _ in range(clients)]
        staff_ids = []
        if args.staff_sockets:
            thread_id = self.world.thread_id
            staff_ids = [
                await tabs.open(staff, f"/ws/staff/threads/{thread_id}/", resume_seq=seq),
                await tabs.open(staff, "/ws/staff/inbox/", resume_seq=None),
            ]
        await asyncio.sleep(0.3)  # resumes answered (with nothing): the server is idle
        every, slowest, posts, echo = [], [], [], []
        missed = 0
        before = None
        profiler = None
        started = time.perf_counter()
        try:
            for i in range(args.warmup + args.messages):
                if i == args.warmup:
                    before = await self.probe.aread()
                    profiler = self._start_profiler(clients)
                    started = time.perf_counter()
                token = self.token()
                body = f"{token} Bench message {i}: the crew arrives at eight tomorrow."
                inbox_frames = tabs.frames[staff_ids[1]] if staff_ids else 0
                t0 = time.perf_counter()
                post = asyncio.create_task(staff.send_staff_message(self.world.thread_id, body))
                arrived = await tabs.wait_until(
                    lambda t=token, p=post: tabs.have(tab_ids, t) or (p.done() and p.exception()),
                    FRAME_TIMEOUT,
                )
                t_post = await asyncio.wait_for(post, HTTP_TIMEOUT)
                if staff_ids:
                    # The sender's own modal and project list: wait for them too, so the next
                    # message starts on an idle server.
                    await tabs.wait_until(
                        lambda t=token, n=inbox_frames: (
                            tabs.have(staff_ids[:1], t) and tabs.frames[staff_ids[1]] > n
                        ),
                        FRAME_TIMEOUT,
                    )
                if i < args.warmup:
                    continue
                if not arrived:
                    missed += 1
                    if missed >= MAX_MISSED:
                        raise RuntimeError(f"{missed} messages never reached every tab")
                    continue
                times = [(tabs.seen[j][token] - t0) * 1000 for j in tab_ids]
                every.extend(times)
                slowest.append(max(times))
                posts.append((t_post - t0) * 1000)
                if staff_ids and token in tabs.seen[staff_ids[0]]:
                    echo.append((tabs.seen[staff_ids[0]][token] - t0) * 1000)
            wall = time.perf_counter() - started
            self._stop_profiler(profiler)
            profiler = None
            await asyncio.sleep(1.2)  # let PostgreSQL statistics arrive
            after = await self.probe.aread()
        finally:
            self._stop_profiler(profiler)
            await tabs.close()
        return LatencyResult(
            clients=clients,
            messages=args.messages,
            every_tab_ms=every,
            slowest_tab_ms=slowest,
            post_ms=posts,
            staff_echo_ms=echo,
            missed=missed,
            per_message=_per_message(before, after, args.messages),
            wall_s=wall,
        )

    def _start_profiler(self, clients: int) -> subprocess.Popen | None:
        if not self.args.py_spy:
            return None
        out = Path(self.args.py_spy) / f"live-{clients}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [py_spy, "record", "--pid", str(self.server.pid), "--rate", "250"]
            + ["--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached before the first timed message
        return process

    @staticmethod
    def _stop_profiler(process: subprocess.Popen | None) -> None:
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    async def idle(self, customer: Browser, staff: Browser, count: int) -> dict:
        await asyncio.sleep(1.0)  # earlier sockets' disconnects handled
        result: dict = {"wanted": count, "threads_before": self.server.threads()}
        result["rss_before_kb"] = self.server.rss_kb()
        tabs = Tabs()
        seq = await self.last_seq()
        gate = asyncio.Semaphore(self.args.connect_concurrency)
        failures: list[str] = []

        async def open_one() -> int | None:
            async with gate:
                try:
                    return await tabs.open(customer, "/ws/thread/", resume_seq=seq)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    failures.append(repr(exc))
                    return None

        t0 = time.perf_counter()
        try:
            opened = await asyncio.wait_for(
                asyncio.gather(*(open_one() for _ in range(count))), 240
            )
            ids = [i for i in opened if i is not None]
            result["open_s"] = time.perf_counter() - t0
            result["failures"] = failures[:3]
            await asyncio.sleep(2.0)  # every resume answered; nothing in flight
            result["open"] = tabs.open_count(ids)
            result["rss_after_kb"] = self.server.rss_kb()
            result["threads_after"] = self.server.threads()

            t1 = time.perf_counter()
            result["http_status"] = await staff.get("/login/")
            result["http_ms"] = (time.perf_counter() - t1) * 1000

            token = self.token()
            t2 = time.perf_counter()
            await staff.send_staff_message(self.world.thread_id, f"{token} Hello, all tabs.")
            result["fanout_post_ms"] = (time.perf_counter() - t2) * 1000
            await tabs.wait_until(lambda: tabs.have(ids, token), FANOUT_TIMEOUT)
            arrivals = sorted(
                (tabs.seen[i][token] - t2) * 1000 for i in ids if token in tabs.seen[i]
            )
            result["delivered"] = len(arrivals)
            if arrivals:
                result["fanout_first_ms"] = arrivals[0]
                result["fanout_median_ms"] = statistics.median(arrivals)
                result["fanout_last_ms"] = arrivals[-1]
            result["rss_peak_kb"] = self.server.rss_kb()
            result["still_open"] = tabs.open_count(ids)
        finally:
            await tabs.close()
        await asyncio.sleep(1.0)
        result["rss_closed_kb"] = self.server.rss_kb()
        return result


# -- report -----------------------------------------------------------------------------------


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _revision() -> str:
    """The commit measured, and whether the working tree differed from it (read-only git)."""
    try:
        head = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head or 'unknown'}{' with uncommitted changes' if dirty else ''}"


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _services(conninfo: str) -> str:
    import psycopg
    import redis

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    return f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={sync}), Redis {redis_version}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    floors: list[Floor],
    reference: list[float],
    results: list[LatencyResult],
    idle: dict | None,
    args,
) -> None:
    floor = Floor([x for f in floors for x in f.pg_ms], [x for f in floors for x in f.redis_ms])
    print("\n== Floor (same PostgreSQL and Redis, no framework)")
    for label, f in zip(("before", "after"), floors, strict=False):
        print(
            f"  {label}: INSERT+COMMIT median {f.pg_median:.3f} ms (p99 {_pct(f.pg_ms, 99):.3f}),"
            f" PUBLISH->SUBSCRIBE median {f.redis_median:.3f} ms "
            f"(p99 {_pct(f.redis_ms, 99):.3f}), floor {f.total:.3f} ms"
        )
    print(
        f"  pooled: {floor.pg_median:.3f} + {floor.redis_median:.3f} = "
        f"floor {floor.total:.3f} ms (goal for p50: <= {10 * floor.total:.2f} ms)"
    )

    print(
        f"\n== Reference (not a goal): GET /login/, anonymous, no database work: "
        f"p50 {_pct(reference, 50):.2f} ms, p99 {_pct(reference, 99):.2f} ms "
        f"({len(reference)} requests)"
    )

    print(
        f"\n== Latency: start of POST -> frame in the customer's tab "
        f"({args.messages} messages per row, after {args.warmup} warm-up; DB_CONN_MAX_AGE="
        f"{args.server_conn_max_age}; staff sockets {'open' if args.staff_sockets else 'closed'})"
    )
    header = (
        f"  {'tabs':>4} | {'p50':>7} | {'p95':>7} | {'p99':>7} | {'max':>7} | "
        f"{'slowest tab p50/p99':>19} | {'POST resp p50':>13} | {'missed':>6}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if not r.every_tab_ms:
            print(f"  {r.clients:>4} | no samples (missed {r.missed})")
            continue
        e = r.every_tab_ms
        print(
            f"  {r.clients:>4} | {_pct(e, 50):7.2f} | {_pct(e, 95):7.2f} | {_pct(e, 99):7.2f} | "
            f"{max(e):7.2f} | {_pct(r.slowest_tab_ms, 50):8.2f} / {_pct(r.slowest_tab_ms, 99):8.2f}"
            f" | {_pct(r.post_ms, 50):13.2f} | {r.missed:>6}"
        )
    print("  (ms; p50/p95/p99/max over every tab's frame; 'slowest tab' is per message)")

    print("\n== Where the time goes, per message (measured outside the server)")
    for r in results:
        pm = r.per_message
        top = ", ".join(f"{name} {calls:.1f}" for name, calls in pm.redis_top)
        echo = (
            f"; sender's modal echo p50 {_pct(r.staff_echo_ms, 50):.2f} ms"
            if r.staff_echo_ms
            else ""
        )
        print(
            f"  {r.clients:>4} tabs: server CPU {pm.server_cpu_ms:.2f} ms; PostgreSQL "
            f"{pm.pg_sessions:.1f} new sessions, {pm.pg_xacts:.1f} transactions, "
            f"{pm.pg_inserted:.1f} rows inserted; Redis {pm.redis_cmds:.1f} commands "
            f"({top}); {r.messages / r.wall_s:.1f} messages/s{echo}"
        )

    if idle:
        print(f"\n== Idle connections (one server process, pid {args.server_pid})")
        n = idle.get("open", 0)
        delta = idle.get("rss_after_kb", 0) - idle["rss_before_kb"]
        print(
            f"  opened {n}/{idle['wanted']} customer WebSockets in {idle.get('open_s', 0):.1f} s"
            + (f" (failures, first 3: {idle['failures']})" if idle.get("failures") else "")
        )
        print(
            f"  server RSS {idle['rss_before_kb'] / 1024:.1f} MB -> "
            f"{idle.get('rss_after_kb', 0) / 1024:.1f} MB: +{delta / 1024:.1f} MB, "
            f"{delta / max(n, 1):.1f} KB per connection (threads "
            f"{idle['threads_before']} -> {idle.get('threads_after', '?')})"
        )
        print(
            f"  with them open: GET /login/ answered {idle.get('http_status')} in "
            f"{idle.get('http_ms', 0):.1f} ms; one message delivered to "
            f"{idle.get('delivered', 0)}/{n} tabs: first {idle.get('fanout_first_ms', 0):.0f} ms,"
            f" median {idle.get('fanout_median_ms', 0):.0f} ms, last "
            f"{idle.get('fanout_last_ms', 0):.0f} ms (POST answered in "
            f"{idle.get('fanout_post_ms', 0):.0f} ms); still open {idle.get('still_open', 0)}"
        )
        print(
            f"  RSS at the fan-out's end {idle.get('rss_peak_kb', 0) / 1024:.1f} MB; "
            f"after closing them {idle.get('rss_closed_kb', 0) / 1024:.1f} MB"
        )

    print("\n== Summary")
    rows: list[tuple[str, str, str, str]] = [
        (
            "floor: INSERT+COMMIT + PUBLISH->SUBSCRIBE",
            f"{floor.pg_median:.2f} + {floor.redis_median:.2f} = {floor.total:.2f} ms",
            "",
            "",
        )
    ]
    for r in results:
        if not r.every_tab_ms:
            rows.append((f"{r.clients} tab(s): latency", "no samples", "", "MISS"))
            continue
        e = r.every_tab_ms
        p50, p99 = _pct(e, 50), _pct(e, 99)
        rows += [
            (
                f"{r.clients} tab(s): p50 / p95 / p99",
                f"{p50:.1f} / {_pct(e, 95):.1f} / {p99:.1f} ms",
                "",
                "",
            ),
            (
                f"{r.clients} tab(s): p50 / floor",
                f"{p50 / floor.total:.1f}x",
                "<= 10x",
                _verdict(p50 <= 10 * floor.total),
            ),
            (f"{r.clients} tab(s): p99", f"{p99:.1f} ms", "< 100 ms", _verdict(p99 < 100)),
        ]
    if idle:
        n = idle.get("open", 0)
        held = (
            n >= idle["wanted"]
            and idle.get("still_open", 0) >= idle["wanted"]
            and idle.get("http_status") == 200
            and idle.get("delivered", 0) > 0
        )
        delta = idle.get("rss_after_kb", 0) - idle["rss_before_kb"]
        rows += [
            (
                "idle connections held by one process",
                f"{n} open, HTTP {idle.get('http_status')}, delivered {idle.get('delivered', 0)}",
                f"{idle['wanted']}",
                _verdict(held),
            ),
            (
                "server memory per idle connection",
                f"{delta / max(n, 1):.1f} KB (+{delta / 1024:.1f} MB)",
                "printed",
                "",
            ),
        ]
    rows.insert(0, ("measure", "value", "goal", "verdict"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for i, row in enumerate(rows):
        print(
            "  " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), end=""
        )
        print(f" | {row[3]}")
        if i == 0:
            print("  " + "-" * (sum(widths) + 16))


async def main_async(args, server: Server, world: World, database_url: str, redis_url: str):
    run = Run(args, server, world, database_url, redis_url)
    floors = []
    print("  floor (before)...", flush=True)
    floors.append(await measure_floor(run.conninfo, redis_url, args.floor_iterations))
    print("  HTTP reference (GET /login/)...", flush=True)
    reference = await run.http_reference()
    customer, staff = await asyncio.wait_for(run.sign_in(), 30)
    results = []
    idle = None
    try:
        for clients in args.clients:
            print(f"  latency with {clients} customer tab(s)...", flush=True)
            results.append(await run.latency(customer, staff, clients))
        print("  floor (after)...", flush=True)
        floors.append(await measure_floor(run.conninfo, redis_url, args.floor_iterations))
        if args.idle:
            print(f"  {args.idle} idle connections...", flush=True)
            idle = await run.idle(customer, staff, args.idle)
        if not server.alive():
            raise RuntimeError(f"the server died; see {server.log}")
    finally:
        await customer.close()
        await staff.close()
    return floors, reference, results, idle


def _parse_clients(value: str) -> list[int]:
    try:
        counts = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("at least one count, each >= 1")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="timed messages per row")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--clients", type=_parse_clients, default=[1, 20], help="customer tabs per row: 1,20"
    )
    parser.add_argument("--floor-iterations", type=int, default=300)
    parser.add_argument("--idle", type=int, default=1000, help="idle connections (0: skip)")
    parser.add_argument("--connect-concurrency", type=int, default=20)
    parser.add_argument(
        "--no-staff-sockets",
        dest="staff_sockets",
        action="store_false",
        help="do not open the sender's chat modal and project list sockets",
    )
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        default=None,
        help="record the server with py-spy (pip install py-spy) during each latency row, "
        "as collapsed stacks in DIR/live-<tabs>.txt",
    )
    parser.add_argument(
        "--server-env",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="extra environment for the server (repeatable), e.g. to try a settings change",
    )
    parser.add_argument(
        "--server-app",
        default="portal.asgi:application",
        help="ASGI application daphne serves (to try a change without editing the app)",
    )
    parser.add_argument(
        "--conn-max-age",
        default=None,
        help="DB_CONN_MAX_AGE for the server (default: as the environment has it, else 0)",
    )
    args = parser.parse_args(argv)

    database_url, redis_url = _prepare_environment()
    fd_limit = _raise_fd_limit(max(8192, 4 * args.idle + 1024))  # the server inherits it
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")
    print("Live latency benchmark (daphne, one process; DEBUG off)")
    print(f"Machine: {_machine()}; open files limit {fd_limit}; code {_revision()}")
    print(f"Load average (1, 5, 15 min) at the start: {_loadavg()}")
    _create_database_if_missing(database_url)
    django.setup()
    print(f"Services: {_services(_psycopg_conninfo(database_url))}")
    _flush_redis(redis_url)
    print("  migrating, flushing and loading the demo...", flush=True)
    world = _build_world()

    extra_env = dict(item.split("=", 1) for item in args.server_env if "=" in item)
    server = Server(
        database_url=database_url,
        redis_url=redis_url,
        conn_max_age=args.conn_max_age,
        extra_env=extra_env,
        app=args.server_app,
    )
    args.server_conn_max_age = server.conn_max_age
    if extra_env or args.server_app != "portal.asgi:application":
        print(f"  server: {args.server_app}; environment additions: {extra_env}")
    status = 0
    try:
        server.start()
        args.server_pid = server.pid
        print(f"  server pid {server.pid} on {server.url} (log {server.log})", flush=True)
        floors, reference, results, idle = asyncio.run(
            asyncio.wait_for(
                main_async(args, server, world, database_url, redis_url), OVERALL_TIMEOUT
            )
        )
        report(floors, reference, results, idle, args)
    except Exception as exc:  # noqa: BLE001 - reported, and the server is stopped
        print(f"bench: failed: {exc!r}", file=sys.stderr)
        if server.log.exists():
            tail = server.log.read_text().splitlines()[-20:]
            print("server log (last lines):\n  " + "\n  ".join(tail), file=sys.stderr)
        status = 1
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            _drop_floor_table(_psycopg_conninfo(database_url))
        with contextlib.suppress(Exception):
            _flush_redis(redis_url)
    print(f"\nLoad average (1, 5, 15 min) at the end: {_loadavg()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
