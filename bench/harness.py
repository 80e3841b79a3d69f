"""What every bench shares: a database of its own, worlds built through the actions (or the
factories the tests use), the real server started by tests/servers.py, a signed-in HTTP
session, and the floor every figure is compared with.

Benches measure from outside: the server's CPU from /proc (its process group), latency at the
client, transactions from pg_stat_database, Redis commands from INFO. Nothing in the product
is shaped for them.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.servers import Caddy

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porchlight_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
BARE_PATH = "/__bench__/bare/"
# deploy/web.sh: what production runs, and what every bench measures unless told otherwise.
PRODUCTION_SERVER = "deploy/web.sh"
SERVERS = [PRODUCTION_SERVER, "uvicorn", "daphne", "granian"]


def refuse(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(2)


def setup_django(*, redis: bool = True) -> tuple[str, str]:
    """Point this process at the bench database (flushed by every bench: its name must
    contain "bench") and Redis database (never index 0), and set Django up. Returns
    (database URL, Redis URL)."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if redis:
        os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["PORCHLIGHT_ENV_FILE"] = ""
    os.environ.pop("DEBUG", None)  # measured as in production
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ.get("REDIS_URL", "")
    db = urllib.parse.urlsplit(database_url)
    if not db.scheme.startswith("postgres"):
        refuse("needs PostgreSQL: DATABASE_URL=postgres://user@host:5432/porchlight_bench")
    if "bench" not in db.path:
        refuse(f"refusing {db.path.lstrip('/')!r}: benches flush their database; name one 'bench'")
    if redis_url and (urllib.parse.urlsplit(redis_url).path.strip("/") or "0") == "0":
        refuse("refusing Redis database 0 (benches flush theirs); e.g. redis://…/7")
    _create_database_if_missing(database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return database_url, redis_url


def _create_database_if_missing(database_url: str) -> None:
    import psycopg

    db = urllib.parse.urlsplit(database_url)
    name = db.path.lstrip("/")
    admin = urllib.parse.urlunsplit(db._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def reset(redis_url: str = "") -> None:
    """Empty the bench database (TRUNCATE: the append-only trigger refuses DELETE) and the
    bench Redis database."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def analyze() -> None:
    """The state autovacuum keeps a table this big in: fresh planner statistics, and GIN
    indexes' pending lists merged (right after a bulk insert every search would scan the
    whole pending list: 40-60 ms on 100,000 new entries)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


# -- worlds ------------------------------------------------------------------------------------


@dataclass
class World:
    business: object
    staff: object
    customers: list


def build_world(*, customers: int = 1) -> World:
    """A business, a staff user (the tests' factories), and `customers` customers, each with
    a user, a project and an empty thread: plain rows, so bulk-created (10,000 of them take
    seconds, not minutes; passwords unusable rather than hashed 10,000 times)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from messaging.models import Thread
    from portal.models import Customer, Project
    from tests.factories import BusinessFactory, StaffUserFactory

    business = BusinessFactory()
    staff = StaffUserFactory(username="bench-staff", password=None)
    User = get_user_model()
    unusable = make_password(None)
    users = User.objects.bulk_create(
        User(username=f"customer{i}", email=f"customer{i}@example.com", password=unusable)
        for i in range(customers)
    )
    people = Customer.objects.bulk_create(
        Customer(
            business=business,
            user=user,
            name=f"Customer {i:05d}",
            email=user.email,
            phone=f"+1555{i:07d}",
            time_zone=business.time_zone,
        )
        for i, user in enumerate(users)
    )
    Project.objects.bulk_create(
        Project(customer=c, code=f"PRJ-{10000 + i}", title="Deck Replacement Project")
        for i, c in enumerate(people)
    )
    Thread.objects.bulk_create(Thread(customer=c) for c in people)
    return World(business=business, staff=staff, customers=people)


_SENTENCE = (
    "the deck boards arrived this morning and the crew will start on the railing after "
    "lunch please keep the side gate unlocked so we can bring the saw through thanks"
)
_WORDS = _SENTENCE.split()


def body(i: int) -> str:
    words = _WORDS * 3
    start = (i * 7) % len(_WORDS)
    return " ".join(words[start : start + 6 + (i * 13) % 40]).capitalize() + "."


def _history(i: int, *, entries: int, end, customer, staff, project) -> dict:
    """Entry i of a history of `entries`: every kind and channel, 45 minutes apart."""
    from messaging.models import Entry

    Kind, Channel = Entry.Kind, Entry.Channel
    at = end - dt.timedelta(minutes=45) * (entries - 1 - i)
    step = i % 10
    common = {"created_at": at, "idempotency_key": None}
    if step in (1, 3, 6):
        channel = {1: Channel.PORTAL, 3: Channel.SMS, 6: Channel.EMAIL}[step]
        return common | {"kind": Kind.CUSTOMER_REPLY, "channel": channel, "body": body(i),
                         "author": customer.user}  # fmt: skip
    if step == 2:
        return common | {"kind": Kind.AUTOMATED, "channel": Channel.SMS,
                         "body": f"Reminder: {body(i)}"}  # fmt: skip
    if step == 5:
        return common | {"kind": Kind.EVENT_CARD, "channel": Channel.SYSTEM,
                         "card_kind": Entry.CardKind.INVOICE, "project": project,
                         "body": f"Invoice #{2000 + i} sent — $4,200",
                         "link_url": "/invoices/"}  # fmt: skip
    if step == 7:
        return common | {"kind": Kind.INTERNAL_NOTE, "channel": Channel.SYSTEM,
                         "body": f"Note: {body(i)}", "author": staff}  # fmt: skip
    if step == 8:
        return common | {"kind": Kind.CALL, "channel": Channel.SYSTEM, "call_started_at": at,
                         "call_duration_seconds": 60 + i % 600,
                         "transcript": f"Asked about {body(i)}", "author": staff}  # fmt: skip
    return common | {"kind": Kind.STAFF_MESSAGE, "channel": Channel.PORTAL, "body": body(i),
                     "author": staff}  # fmt: skip


def fill_thread(*, customer, staff, entries: int, chunk: int = 500) -> None:
    """`entries` entries of every kind and channel, 45 minutes apart up to a minute ago.

    Up to 5,000 they are written through the actions, as a history import is (notify=False:
    no notifications). Longer histories are bulk-inserted with the same content and the
    thread's counters set to match, which the actions would have made the same but about a
    hundred times slower (100,000 took 18 minutes)."""
    from django.db import transaction
    from django.utils import timezone

    from messaging import actions
    from messaging.models import INBOUND_KINDS, Entry, Side, Thread

    thread = actions.ensure_thread(customer=customer)
    project = customer.projects.first()
    end = timezone.now() - dt.timedelta(minutes=1)
    if entries > 5000:
        start_seq = thread.last_seq
        counts = {Side.CUSTOMER: 0, Side.STAFF: 0}
        last = None
        for start in range(0, entries, 5000):
            rows = []
            for i in range(start, min(start + 5000, entries)):
                fields = _history(
                    i, entries=entries, end=end, customer=customer, staff=staff, project=project
                )
                for side in counts:
                    counts[side] += fields["kind"] in INBOUND_KINDS[side]
                rows.append(Entry(thread=thread, seq=start_seq + i + 1, **fields))
            Entry.objects.bulk_create(rows)
            last = rows[-1]
        Thread.objects.filter(pk=thread.pk).update(
            last_seq=last.seq,
            last_entry_at=last.created_at,
            customer_inbound=thread.customer_inbound + counts[Side.CUSTOMER],
            staff_inbound=thread.staff_inbound + counts[Side.STAFF],
        )
        return
    for start in range(0, entries, chunk):
        with transaction.atomic():
            for i in range(start, min(start + chunk, entries)):
                fields = _history(
                    i, entries=entries, end=end, customer=customer, staff=staff, project=project
                )
                at, kind = fields["created_at"], fields["kind"]
                if kind == Entry.Kind.CUSTOMER_REPLY:
                    actions.post_customer_reply(
                        customer=customer, body=fields["body"], channel=fields["channel"],
                        at=at, notify=False,
                    )  # fmt: skip
                elif kind == Entry.Kind.AUTOMATED:
                    actions.post_automated_message(
                        thread=thread, body=fields["body"], at=at, notify=False
                    )
                elif kind == Entry.Kind.EVENT_CARD:
                    actions.post_event_card(
                        thread=thread, card_kind=fields["card_kind"], title=fields["body"],
                        link_url=fields["link_url"], project=project, at=at, notify=False,
                    )  # fmt: skip
                elif kind == Entry.Kind.INTERNAL_NOTE:
                    actions.add_internal_note(
                        thread=thread, author=staff, body=fields["body"], at=at
                    )
                elif kind == Entry.Kind.CALL:
                    actions.log_call(
                        thread=thread, started_at=at,
                        duration_seconds=fields["call_duration_seconds"],
                        transcript=fields["transcript"], author=staff,
                    )  # fmt: skip
                else:
                    actions.post_staff_message(
                        thread=thread, author=staff, body=fields["body"], at=at, notify=False
                    )


# -- the server and its clients ----------------------------------------------------------------


def start_server(
    database_url: str,
    redis_url: str,
    *,
    server: str = PRODUCTION_SERVER,
    args: tuple[str, ...] = (),
    port: int | None = None,
    **env,
):
    """The project's ASGI server, one process, DEBUG off, with the bare floor view beside the
    app. By default production's own: deploy/web.sh run as the script (its uvicorn command
    line, WebSocket implementation and log level) with production's logging settings, the
    floor added by bench/settings.py. Other servers (bench.servers compares them) serve
    bench/asgi.py. `args` go on the server's command line (deploy/web.sh hands them to
    uvicorn: a later option wins)."""
    from tests.servers import UNLIMITED_RATES, AsgiServer

    if server == PRODUCTION_SERVER:
        env = {"DJANGO_SETTINGS_MODULE": "bench.settings", **env}
    return AsgiServer(
        database_url=database_url,
        server=server,
        app="bench.asgi:application",
        args=args,
        port=port,
        env={
            "REDIS_URL": redis_url,
            "SECRET_KEY": os.environ["SECRET_KEY"],
            **UNLIMITED_RATES,
            **env,
        },
    ).start()


def signed_in_session(base_url: str, user):
    """A requests session signed in as `user` through the real magic link (GET the page,
    POST its form)."""
    import re

    import requests

    from portal.actions import login_url_for

    session = requests.Session()
    url = login_url_for(user=user).replace(_site_url(), base_url)
    page = session.get(url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    sesame = re.search(r'name="sesame" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base_url}/login/magic/",
        data={"csrfmiddlewaretoken": token, "sesame": sesame},
        headers={"Referer": url},
        timeout=10,
    )
    answer.raise_for_status()
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    session.headers["Referer"] = base_url + "/"
    return session


def _site_url() -> str:
    from django.conf import settings

    return settings.SITE_URL


@dataclass
class Cost:
    """What N requests cost: server CPU per request (ms), client latency percentiles (ms)."""

    cpu_ms: float
    p50_ms: float
    p99_ms: float
    n: int

    def ratio(self, floor: Cost) -> float:
        return self.cpu_ms / floor.cpu_ms if floor.cpu_ms else float("nan")


def measure(server, call: Callable[[], object], *, n: int, warmup: int = 10) -> Cost:
    """Call `call` n times back to back (after a warm-up) and return the server's CPU per
    call, from its process group's /proc counters, and the latency at the client."""
    for _ in range(warmup):
        call()
    times = []
    cpu_before = server.cpu_seconds()
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    cpu = (server.cpu_seconds() - cpu_before) * 1000 / n
    return Cost(cpu_ms=cpu, p50_ms=percentile(times, 50), p99_ms=percentile(times, 99), n=n)


def bare_cost(server, session, *, n: int = 300) -> Cost:
    """The floor: a bare Django view (no middleware, no database) through the same server."""

    def get() -> None:
        session.get(server.url + BARE_PATH, timeout=10).raise_for_status()

    return measure(server, get, n=n)


# -- profiling ---------------------------------------------------------------------------------


def py_spy(pid: int, out: Path, *, rate: int, mode: str) -> subprocess.Popen | None:
    """py-spy recording process `pid` and its children into `out` (collapsed stacks, for
    bench.profile_top) until SIGINT; None when py-spy is not installed. `mode` is "--gil"
    (only the thread holding the GIL: where the CPU goes in Python) or "--idle" (every
    thread, waiting ones too: where the wall time goes)."""
    executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(executable).exists():
        return None
    return subprocess.Popen(  # noqa: S603 - a profiler on our own process
        [executable, "record", "--pid", str(pid), "--subprocesses", mode, "--rate", str(rate),
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


# -- reporting ---------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(max(int(p), 1), 99) - 1]


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        commit = subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"load {load} · commit {commit}"
    )


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


# -- several web processes behind Caddy ------------------------------------------------------


class Cluster:
    """`web` processes, each deploy/web.sh on a port of its own, and Caddy in front with
    deploy/Caddyfile: the shape of production with several web containers. Clients talk to
    Caddy (`url`); live frames between the processes go through the Redis channel layer.
    CPU and memory are summed over the web processes (Caddy's CPU apart: `proxy_cpu_seconds`),
    so a bench reads it as it reads one server."""

    def __init__(self, servers: list, caddy: Caddy) -> None:
        self.servers, self.caddy = servers, caddy
        self.url = caddy.url

    @property
    def pid(self) -> int:
        return self.servers[0].pid

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def proxy_cpu_seconds(self) -> float:
        return self.caddy.cpu_seconds()

    def rss_kb(self) -> int:
        return sum(server.rss_kb() for server in self.servers)

    def stop(self) -> None:
        self.caddy.stop()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.caddy.home, ignore_errors=True)


def start_cluster(database_url: str, redis_url: str, *, web: int = 2, **env) -> Cluster:
    """`web` deploy/web.sh processes (SITE_URL is Caddy's address, as behind production's
    proxy) and Caddy in front of them."""
    import tempfile

    from tests.servers import Caddy, ProcessFailed, free_port

    proxy_port = free_port()
    ports = [free_port() for _ in range(web)]
    servers = []
    try:
        for port in ports:
            servers.append(
                start_server(
                    database_url,
                    redis_url,
                    port=port,
                    SITE_URL=f"http://127.0.0.1:{proxy_port}",
                    FORWARDED_ALLOW_IPS="127.0.0.1",
                    **env,
                )  # fmt: skip
            )
        home = Path(tempfile.mkdtemp(prefix="porchlight-caddy-"))
        executable = shutil.which("caddy")
        if executable is None:
            refuse("--web N needs Debian's caddy (apt-get install caddy)")
        upstreams = [f"127.0.0.1:{port}" for port in ports]
        try:
            caddy = Caddy(executable, upstreams, home, proxy_port).start()
        except ProcessFailed as failed:
            refuse(str(failed))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return Cluster(servers, caddy)
