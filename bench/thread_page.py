"""Thread page benchmark: does a page's cost stay flat as the data behind it grows?

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench \\
        .venv/bin/python -m bench.thread_page

Times, from the server's side (Django's test Client, in-process, DEBUG off), the customer
Messages page `/messages/` for a thread of 10 and of 10,000 entries, and the staff project
list `/staff/projects/` for 10 and for 1,000 projects; plus a control, a thread of 100
entries, whose first page is as full as the 10,000-entry one. Goals:

- Messages page: 10,000 entries cost at most 1.2x what 10 cost, with the same query count.
- Staff project list: 1,000 projects cost at most 3x what 10 cost, with the same query count.

Each scenario starts from an empty database (migrate once, then `flush`, which TRUNCATEs on
PostgreSQL: the append-only trigger refuses DELETE, not TRUNCATE), builds its rows (entries
only through `messaging.actions`, as a history import: `notify=False` where the action takes
it), runs ANALYZE as autovacuum would have by then, and is measured: one first visit (on
/messages/ it marks the thread read; reported apart), warm-up requests, then back-to-back
timed steady-state requests, at least N and for at least 3 s (median, p90, CPU time), the
queries per request, and the Python function calls per request (counted by cProfile outside
the timed requests; unlike times, it does not move with load elsewhere on the machine).

Exit status 0 whatever the figures (PASS/MISS is printed); 2 when refusing to run.

Without DATABASE_URL the run uses a throwaway SQLite file in a temporary directory, never
the development `db.sqlite3`. A PostgreSQL database must have "bench" in its name, because
every scenario empties it.

Options: --requests N (at least N timed requests per scenario, default 30), --min-seconds S
(time each scenario for at least S seconds, default 3), --warmup N (default 5),
--explain (EXPLAIN ANALYZE of each query of the large scenarios), --profile (cProfile of
the large scenarios' requests), --no-analyze (skip ANALYZE after building), --interleaved
(also time the 10, 100 and 10,000-entry Messages pages side by side in one database, in
alternating blocks, which load elsewhere on the machine cannot bias; about a minute more).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import gc
import inspect
import io
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client

MESSAGES_URL = "/messages/"
STAFF_URL = "/staff/projects/"
CHUNK = 500  # appends per transaction while building (each append is its own savepoint)

# Goals: (name, small scenario, large scenario, highest allowed median ratio)
GOALS = [
    ("Messages page, 10,000 entries vs 10", "messages-10", "messages-10000", 1.2),
    ("Staff project list, 1,000 projects vs 10", "staff-10", "staff-1000", 3.0),
]

# Not goals: comparisons that say where a miss comes from.
CONTROLS = [
    (
        "Messages page, 10,000 entries vs 100 (both render a full page of 50)",
        "messages-100",
        "messages-10000",
    ),
]


def _prepare_environment() -> str | None:
    """Point Django at the bench database before settings are imported. Returns the
    temporary directory to delete afterwards (SQLite only)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # Self-contained: in-memory channel layer and inline Celery, whatever the shell exports.
    os.environ.pop("REDIS_URL", None)
    if os.environ.get("DATABASE_URL"):
        return None
    tmp = tempfile.mkdtemp(prefix="porchlight-bench-")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    return tmp


def _refuse_unless_bench_database() -> None:
    from django.conf import settings
    from django.db import connection

    name = str(settings.DATABASES["default"]["NAME"])
    if connection.vendor == "sqlite":
        if os.path.abspath(name) == os.path.abspath(settings.BASE_DIR / "db.sqlite3"):
            _refuse("refusing to empty the development db.sqlite3")
        return
    if "bench" not in name or name in {"porchlight", "test_porchlight"}:
        _refuse(
            f"refusing to empty database {name!r}; every scenario flushes it. "
            "Use a dedicated database with 'bench' in its name, e.g. "
            "createdb -h 127.0.0.1 -U postgres porchlight_bench"
        )


def _refuse(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(2)


# -- building rows -------------------------------------------------------------------------


@dataclass
class World:
    business: object
    staff: object


def _world() -> World:
    from django.contrib.auth import get_user_model

    from portal.models import Business

    business = Business.objects.create(
        name="Mike's Contracting",
        initials="MC",
        phone="+15555550100",
        sms_number="+15555550100",
        email="office@mikescontracting.example",
        time_zone="America/New_York",
    )
    staff = get_user_model().objects.create(
        username="bench-staff", first_name="Mike", email="mike@example.com", is_staff=True
    )
    return World(business=business, staff=staff)


def _customers(business, n: int) -> list:
    """n customers, each with a user and one project. Plain rows (no thread entries), so
    bulk_create; passwords are unusable rather than hashed 1,000 times."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from portal.models import Customer, Project

    User = get_user_model()
    users = User.objects.bulk_create(
        User(
            username=f"customer{i}", email=f"customer{i}@example.com", password=make_password(None)
        )
        for i in range(n)
    )
    customers = Customer.objects.bulk_create(
        Customer(
            business=business,
            user=user,
            name=f"Customer {i:04d} Example",
            email=user.email,
            phone=f"+1555{i:07d}",
            time_zone="America/New_York",
        )
        for i, user in enumerate(users)
    )
    Project.objects.bulk_create(
        Project(
            customer=customer,
            code=f"PRJ-{10000 + i}",
            title="Deck Replacement Project",
            status=Project.Status.ACTIVE,
            plan_type="Premium Plan",
        )
        for i, customer in enumerate(customers)
    )
    return customers


_SENTENCE = (
    "the deck boards arrived this morning and the crew will start on the railing after "
    "lunch please keep the side gate unlocked so we can bring the saw through thanks"
)
_WORDS = tuple(_SENTENCE.split())


def _body(i: int) -> str:
    words = list(_WORDS) * 3
    start = (i * 7) % len(_WORDS)
    text = " ".join(words[start : start + 6 + (i * 13) % 40]).capitalize() + "."
    if i % 9 == 0:
        text += f" Photos: https://photos.example.com/deck/{i}"
    return text


@functools.cache
def _takes_notify(action) -> bool:
    return "notify" in inspect.signature(action).parameters


def _record(action, **kwargs):
    """Call an action as a history import does: with notify=False where the action takes
    it, so building 10,000 entries queues no SMS, email or push (neither timed page reads
    deliveries). The entries themselves are written exactly as in production."""
    if _takes_notify(action):
        kwargs["notify"] = False
    return action(**kwargs)


def _append_one(i: int, *, thread, customer, project, staff, at: dt.datetime) -> None:
    """One entry of a realistic mix (every kind and channel), through the actions."""
    from messaging import actions
    from messaging.models import Entry

    Channel = Entry.Channel
    step = i % 10
    if step in (0, 9):
        _record(
            actions.post_staff_message,
            thread=thread,
            author=staff,
            body=_body(i),
            project=project,
            at=at,
        )
    elif step == 4:
        _record(
            actions.post_staff_message,
            thread=thread,
            author=staff,
            body=_body(i),
            urgent=i % 20 == 4,
            at=at,
        )
    elif step == 1:
        _record(actions.post_customer_reply, customer=customer, body=_body(i), at=at)
    elif step == 3:
        _record(
            actions.post_customer_reply,
            customer=customer,
            body=_body(i),
            channel=Channel.SMS,
            at=at,
        )
    elif step == 6:
        _record(
            actions.post_customer_reply,
            customer=customer,
            body=_body(i),
            channel=Channel.EMAIL,
            project=project,
            at=at,
        )
    elif step == 2:
        _record(
            actions.post_automated_message,
            thread=thread,
            body=f"Reminder: crew arrives at 8am. {_body(i)}",
            at=at,
        )
    elif step == 5:
        _record(
            actions.post_event_card,
            thread=thread,
            card_kind=Entry.CardKind.INVOICE if i % 20 == 5 else Entry.CardKind.APPOINTMENT,
            title=f"Invoice #{2000 + i} sent — $4,200",
            link_url="/invoices/",
            project=project,
            at=at,
        )
    elif step == 7:
        _record(
            actions.add_internal_note, thread=thread, author=staff, body=f"Note: {_body(i)}", at=at
        )
    else:
        _record(
            actions.log_call,
            thread=thread,
            started_at=at,
            duration_seconds=60 + (i % 600),
            transcript=f"Customer asked about {_body(i)}",
            author=staff,
        )


def build_threads(sizes: list[int]) -> list[Client]:
    """One customer per size, whose thread has that many entries, 45 minutes apart, the last
    a minute ago. Returns a logged-in customer client for each."""
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from messaging import actions

    world = _world()
    clients = []
    for customer, n_entries in zip(_customers(world.business, len(sizes)), sizes, strict=True):
        project = customer.projects.get()
        thread = actions.ensure_thread(customer=customer)
        end = timezone.now() - dt.timedelta(minutes=1)
        spacing = dt.timedelta(minutes=45)
        for start in range(0, n_entries, CHUNK):
            with transaction.atomic():
                for i in range(start, min(start + CHUNK, n_entries)):
                    at = end - spacing * (n_entries - 1 - i)
                    _append_one(
                        i,
                        thread=thread,
                        customer=customer,
                        project=project,
                        staff=world.staff,
                        at=at,
                    )
        client = Client()
        client.force_login(customer.user)
        clients.append(client)
    return clients


def build_thread(n_entries: int) -> Client:
    return build_threads([n_entries])[0]


def build_projects(n_projects: int) -> Client:
    """n_projects customers, each with a project, a thread and two or three messages (every
    third with an unread reply). Returns a logged-in staff client."""
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from messaging import actions
    from messaging.models import Side

    world = _world()
    customers = _customers(world.business, n_projects)
    now = timezone.now()
    for start in range(0, n_projects, CHUNK):
        with transaction.atomic():
            for i, customer in enumerate(customers[start : start + CHUNK], start=start):
                at = now - dt.timedelta(minutes=7 * i + 3)
                thread = actions.ensure_thread(customer=customer)
                _record(actions.post_customer_reply, customer=customer, body=_body(i), at=at)
                _record(
                    actions.post_staff_message,
                    thread=thread,
                    author=world.staff,
                    body=_body(i + 1),
                    at=at,
                )
                if i % 3 == 0:
                    _record(
                        actions.post_customer_reply,
                        customer=customer,
                        body=_body(i + 2),
                        at=at + dt.timedelta(minutes=1),
                    )
                else:
                    actions.mark_read(thread=thread, side=Side.STAFF)
    client = Client()
    client.force_login(world.staff)
    return client


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    label: str
    url: str
    build: Callable[[], Client]
    expect_rows: int  # entries (Messages page) or project rows (staff list) in the response
    row_marker: str
    large: bool = False


@dataclass
class Result:
    scenario: Scenario
    build_s: float
    first_ms: float
    first_queries: int
    times_ms: list[float]
    cpu_ms: list[float]
    queries: int
    queries_per_timed_request: set[int]
    rows: int
    sql: list[str] = field(default_factory=list)
    py_calls: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.times_ms, n=10, method="inclusive")[8]


@contextmanager
def _count_queries(counter: list[int]):
    """Counts queries with an execute wrapper: unlike CaptureQueriesContext it keeps no SQL,
    so it costs next to nothing inside the timed requests."""
    from django.db import connection

    def wrapper(execute, sql, params, many, context):
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def _get(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return response


def run_scenario(
    scenario: Scenario,
    *,
    requests: int,
    warmup: int,
    min_seconds: float = 3.0,
    analyze: bool = True,
    explain: bool = False,
    profile: bool = False,
) -> Result:
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("flush", interactive=False, verbosity=0)
    started = time.perf_counter()
    client = scenario.build()
    # Fresh statistics, as autovacuum's autoanalyze would have by the time a thread or a
    # project list is this large. Without this the plan depends on whether autoanalyze
    # happened to run during the build (see docs/performance.md, "Thread page").
    if analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    build_s = time.perf_counter() - started

    # The first visit is not the steady state (on /messages/ it marks the thread read).
    with CaptureQueriesContext(connection) as first:
        t0 = time.perf_counter()
        _get(client, scenario.url)
        first_ms = (time.perf_counter() - t0) * 1000
    # Read the captures now: the next request's request_started signal clears the log.
    first_queries = len(first.captured_queries)
    for _ in range(max(warmup - 1, 0)):
        _get(client, scenario.url)

    with CaptureQueriesContext(connection) as captured:
        response = _get(client, scenario.url)
    sql = [q["sql"] for q in captured.captured_queries]
    rows = response.content.decode().count(scenario.row_marker)
    if rows != scenario.expect_rows:
        raise RuntimeError(f"{scenario.key}: expected {scenario.expect_rows} rows, saw {rows}")

    gc.collect()
    times: list[float] = []
    cpu: list[float] = []
    per_request: set[int] = set()
    # Back to back, at least `requests` of them and for at least `min_seconds`: a fast page
    # gets more samples, spread over long enough that one burst of load elsewhere on the
    # machine cannot take the whole scenario.
    loop_started = time.perf_counter()
    while len(times) < requests or time.perf_counter() - loop_started < min_seconds:
        counter = [0]
        with _count_queries(counter):
            c0 = time.process_time()
            t0 = time.perf_counter()
            client.get(scenario.url)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        per_request.add(counter[0])

    result = Result(
        scenario=scenario,
        build_s=build_s,
        first_ms=first_ms,
        first_queries=first_queries,
        times_ms=times,
        cpu_ms=cpu,
        queries=len(sql),
        queries_per_timed_request=per_request,
        rows=rows,
        sql=sql,
        py_calls=_python_calls(client, scenario.url),
    )
    if explain and scenario.large:
        _explain(result)
    if profile and scenario.large:
        _profile(client, scenario.url)
    return result


def interleaved_messages(sizes=(10, 100, 10_000), rounds: int = 20, block: int = 10) -> None:
    """A check that load elsewhere on the machine cannot bias: the three threads live in one
    database and their Messages pages are timed in alternating blocks, so a burst of load
    hits all of them alike. Not one of the scenarios (those each start from empty tables)."""
    from django.core.management import call_command
    from django.db import connection

    print(f"  interleaved check: threads of {', '.join(f'{n:,}' for n in sizes)} entries...")
    call_command("flush", interactive=False, verbosity=0)
    clients = build_threads(list(sizes))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for client in clients:
        _get(client, MESSAGES_URL)  # the first visit marks the thread read
    for _ in range(rounds):
        for n, client in zip(sizes, clients, strict=True):
            for _ in range(2):
                client.get(MESSAGES_URL)
            for _ in range(block):
                c0, t0 = time.process_time(), time.perf_counter()
                client.get(MESSAGES_URL)
                wall[n].append((time.perf_counter() - t0) * 1000)
                cpu[n].append((time.process_time() - c0) * 1000)
    call_command("flush", interactive=False, verbosity=0)
    print(
        f"\nInterleaved check (--interleaved): the three threads in one database, /messages/ "
        f"timed in\nalternating blocks of {block}, {rounds} rounds:"
    )
    base = sizes[0]
    for n in sizes:
        print(
            f"  thread of {n:>6,} entries: median {statistics.median(wall[n]):6.2f} ms, "
            f"cpu {statistics.median(cpu[n]):6.2f} ms; vs {base:,} entries: "
            f"{statistics.median(wall[n]) / statistics.median(wall[base]):.2f}x "
            f"(cpu {statistics.median(cpu[n]) / statistics.median(cpu[base]):.2f}x)"
        )


def _python_calls(client, url: str, repeats: int = 3) -> int:
    """Python function calls per request, counted by cProfile outside the timed requests:
    a measure of the work done that, unlike the times, does not move with machine load."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        client.get(url)
    profiler.disable()
    return round(pstats.Stats(profiler).total_calls / repeats)


def _explain(result: Result) -> None:
    from django.db import connection

    print(f"\n--- EXPLAIN, {result.scenario.label} ---")
    for sql in result.sql:
        print(f"\n{sql}")
        if not sql.lstrip().upper().startswith("SELECT") or "FOR UPDATE" in sql.upper():
            print("  (not a plain SELECT; not explained)")
            continue
        prefix = (
            "EXPLAIN (ANALYZE, BUFFERS) "
            if connection.vendor == "postgresql"
            else "EXPLAIN QUERY PLAN "
        )
        with connection.cursor() as cursor:
            cursor.execute(prefix + sql)
            for row in cursor.fetchall():
                print("  " + " | ".join(str(c) for c in row))


def _profile(client, url: str, repeats: int = 10) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        client.get(url)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(f"\n--- cProfile, {repeats} x GET {url}, top 30 by cumulative time ---")
    print(out.getvalue())


# -- report --------------------------------------------------------------------------------


def _machine() -> str:
    from django.db import connection

    cpus = os.cpu_count()
    db = connection.vendor
    if db == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            db += " " + cursor.fetchone()[0].split()[0]
    else:
        import sqlite3

        db += " " + sqlite3.sqlite_version
    name = connection.settings_dict["NAME"]
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPUs, Python "
        f"{platform.python_version()}, Django {_django_version()}, {db} ({name})"
    )


def _loadavg() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _django_version() -> str:
    import django

    return django.get_version()


def report(results: dict[str, Result], *, requests: int, warmup: int, min_seconds: float) -> None:
    print()
    header = (
        f"{'scenario':<46} {'median ms':>10} {'p90 ms':>8} {'cpu ms':>7} {'queries':>8}"
        f" {'rows shown':>11} {'py calls':>10} {'timed':>6} {'first visit':>16} {'build s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results.values():
        counts = sorted(r.queries_per_timed_request)
        queries = f"{r.queries}" if counts == [r.queries] else f"{r.queries}!{counts}"
        first = f"{r.first_ms:.1f} ms/{r.first_queries}q"
        print(
            f"{r.scenario.label:<46} {r.median:>10.2f} {r.p90:>8.2f} {r.cpu_median:>7.2f}"
            f" {queries:>8} {r.rows:>11} {r.py_calls:>10,} {len(r.times_ms):>6} {first:>16}"
            f" {r.build_s:>8.1f}"
        )
    print(
        f"""
Times are wall-clock milliseconds per request, server side; 'cpu ms' is this process's CPU
time. Each scenario: {warmup} warm-up requests, then back-to-back timed requests, at least
{requests} and for at least {min_seconds:g} s ('timed' says how many). They are steady-state repeat
visits: the first visit to /messages/ marks the thread read, so it is reported apart ('first
visit': time and queries) and is not in the median; later visits mark nothing new and take no
lock. 'rows shown': entries rendered (Messages page, at most one page of 50) or project rows
(staff list). 'py calls': Python function calls per request (cProfile, outside the timed
requests). The test Client keeps its database connection open, so connection setup is not in
the times (as with DB_CONN_MAX_AGE > 0)."""
    )
    print(
        "\nGoals: ratio of the median times; query counts must be identical. Also shown: the "
        "ratio of CPU\ntime and of Python calls per request, which move less (or not at all) "
        "with load elsewhere on the machine."
    )
    for name, small_key, large_key, limit in GOALS:
        small, large = results[small_key], results[large_key]
        same_queries = (
            small.queries == large.queries
            and small.queries_per_timed_request == {small.queries}
            and large.queries_per_timed_request == {large.queries}
        )
        ratio = large.median / small.median
        work = large.py_calls / small.py_calls
        verdict = "PASS" if ratio <= limit and same_queries else "MISS"
        print(
            f"  {verdict}  {name}: {ratio:.2f}x (goal <= {limit}x; p90 "
            f"{large.p90 / small.p90:.2f}x, cpu {large.cpu_median / small.cpu_median:.2f}x, "
            f"py calls {work:.2f}x), queries {small.queries} vs {large.queries}"
            f" ({'identical' if same_queries else 'DIFFERENT'})"
        )
        if (ratio <= limit) != (work <= limit):
            print(
                "        times and work disagree about this goal: the times were probably "
                "disturbed by other load; run again on a quieter machine"
            )
    print("\nControls (not goals):")
    for name, small_key, large_key in CONTROLS:
        small, large = results[small_key], results[large_key]
        print(
            f"  {name}: {large.median / small.median:.2f}x "
            f"(py calls {large.py_calls / small.py_calls:.2f}x), "
            f"queries {small.queries} vs {large.queries}"
        )
    for small_key, large_key in [("messages-10", "messages-100"), ("staff-10", "staff-1000")]:
        small, large = results[small_key], results[large_key]
        extra = large.rows - small.rows
        print(
            f"  {large.scenario.url}: each extra row shown adds "
            f"{(large.median - small.median) / extra:.3f} ms and "
            f"{(large.py_calls - small.py_calls) / extra:,.0f} Python calls "
            f"({small.rows} -> {large.rows} rows)"
        )
    print(f"\nLoad average (1, 5, 15 min) at the end: {_loadavg()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=3.0,
        help="keep timing each scenario for at least this long (default 3)",
    )
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="also time the three Messages pages interleaved in one database (about +60 s)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="skip ANALYZE after building (plans then depend on stale statistics)",
    )
    args = parser.parse_args(argv)

    tmp = _prepare_environment()
    try:
        import warnings

        import django

        # whitenoise-style notice about an uncollected STATIC_ROOT; irrelevant to the timings
        warnings.filterwarnings("ignore", message="No directory at")
        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        _refuse_unless_bench_database()
        settings.DEBUG = False  # timing with DEBUG on would measure its query log, not the page
        print("Thread page benchmark (server side: Django test Client, in-process; DEBUG=False)")
        print(f"Machine: {_machine()}")
        print(f"Load average (1, 5, 15 min) at the start: {_loadavg()}")
        call_command("migrate", interactive=False, verbosity=0)

        scenarios = [
            Scenario(
                "messages-10",
                "/messages/, thread of 10 entries",
                MESSAGES_URL,
                lambda: build_thread(10),
                expect_rows=9,  # one of the ten is an internal note, hidden from customers
                row_marker="data-seq=",
            ),
            Scenario(
                "messages-100",
                "/messages/, 100 entries (control: full page)",
                MESSAGES_URL,
                lambda: build_thread(100),
                expect_rows=50,
                row_marker="data-seq=",
            ),
            Scenario(
                "messages-10000",
                "/messages/, thread of 10,000 entries",
                MESSAGES_URL,
                lambda: build_thread(10_000),
                expect_rows=50,
                row_marker="data-seq=",
                large=True,
            ),
            Scenario(
                "staff-10",
                "/staff/projects/, 10 projects",
                STAFF_URL,
                lambda: build_projects(10),
                expect_rows=10,
                row_marker="Open chat with",
            ),
            Scenario(
                "staff-1000",
                "/staff/projects/, 1,000 projects",
                STAFF_URL,
                lambda: build_projects(1_000),
                expect_rows=50,  # the first keyset page; the rest load as staff scroll
                row_marker="Open chat with",
                large=True,
            ),
        ]
        results: dict[str, Result] = {}
        for scenario in scenarios:
            print(f"  {scenario.label}: building and timing...", flush=True)
            results[scenario.key] = run_scenario(
                scenario,
                requests=args.requests,
                warmup=args.warmup,
                min_seconds=args.min_seconds,
                analyze=args.analyze,
                explain=args.explain,
                profile=args.profile,
            )
        call_command("flush", interactive=False, verbosity=0)
        report(results, requests=args.requests, warmup=args.warmup, min_seconds=args.min_seconds)
        if args.interleaved:
            interleaved_messages()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
