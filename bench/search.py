"""Search: what finding a word costs on a long thread, for a word in most entries, a word in
a few, a word in none, and a phrase, against the bare view.

    SECRET_KEY=x .venv/bin/python -m bench.search [--entries 100000]

PostgreSQL only (SQLite searches by substring, a laptop's few rows). Each term is measured
twice: the search query alone in this process (its median wall time, the plan's first node
and the rows it read, from EXPLAIN ANALYZE), and GET /messages/search/ through the real
server (server CPU per request, client p50, ratio to the bare view). The goals: every term
≤ 50 ms on 100,000 entries, and within 3× of the common word.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import harness

RARE = "chimney"  # written into RARE_COUNT entries spread over the history
RARE_COUNT = 3
TERMS = [
    ("common word", "deck"),
    ("rare word", RARE),
    ("absent word", "zebra"),
    ("phrase", '"side gate"'),
    ("two words", "railing saw"),
]


def _plant_rare_word(thread, entries: int) -> None:
    """Append RARE to RARE_COUNT entries spread over the history. Entries are append-only
    (a trigger refuses UPDATE), so the trigger is disabled for this one statement."""
    from django.db import connection, transaction

    seqs = [max(1, entries * (k + 1) // (RARE_COUNT + 1)) for k in range(RARE_COUNT)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE messaging_entry DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE messaging_entry SET body = body || %s WHERE thread_id = %s AND seq = ANY(%s)",
            [f" The {RARE} flashing too.", thread.pk, seqs],
        )
        cursor.execute("ALTER TABLE messaging_entry ENABLE TRIGGER USER")


def _query_cost(thread, query: str, *, n: int) -> tuple[float, int, str, int]:
    """(median ms, matches, plan's top node, rows read) of the search query in this process."""
    from django.db import connection

    from messaging import queries
    from messaging.models import Side

    times, found = [], []
    for _ in range(n):
        started = time.perf_counter()
        found = queries.search_entries(thread=thread, audience=Side.CUSTOMER, query=query)
        times.append((time.perf_counter() - started) * 1000)
    sql, params = _search_sql(thread, query)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0][0]["Plan"]
    return statistics.median(times), len(found), _describe(plan), _rows_read(plan)


def _search_sql(thread, query: str):
    """The SQL search_entries runs (rebuilt from the same functions, so it stays in step)."""
    from messaging import queries
    from messaging.models import Side

    return queries.search_queryset(
        thread=thread, audience=Side.CUSTOMER, query=query
    ).query.sql_with_params()


def _describe(plan: dict) -> str:
    """The plan's shape: each node down the first child, with its index when it has one."""
    parts = []
    while plan:
        name = plan["Node Type"]
        if plan.get("Index Name"):
            name += f" ({plan['Index Name']})"
        parts.append(name)
        plan = (plan.get("Plans") or [None])[0]
    return " ← ".join(parts)


def _rows_read(plan: dict) -> int:
    """Rows the plan's leaves produced plus those their filters threw away."""
    children = plan.get("Plans") or []
    if not children:
        loops = plan.get("Actual Loops", 1)
        return (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    return sum(_rows_read(child) for child in children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "daphne", "granian"])
    args = parser.parse_args(argv)

    database_url, redis_url = harness.setup_django()
    from django.db import connection

    from messaging.models import Thread

    if connection.vendor != "postgresql":
        harness.refuse("bench.search measures PostgreSQL's full-text search; set DATABASE_URL")
    print(f"bench.search · {harness.machine()} · server {args.server} · {args.entries:,} entries")
    server = harness.start_server(database_url, redis_url, server=args.server)
    rows = [["term", "matches", "query (median)", "rows read", "plan", "server CPU", "× bare",
             "p50", "vs common"]]  # fmt: skip
    try:
        harness.reset(redis_url)
        world = harness.build_world(customers=1)
        customer = world.customers[0]
        harness.fill_thread(customer=customer, staff=world.staff, entries=args.entries)
        thread = Thread.objects.get(customer=customer)
        _plant_rare_word(thread, args.entries)
        harness.analyze()
        session = harness.signed_in_session(server.url, customer.user)
        floor = harness.bare_cost(server, session, n=args.requests * 2)
        rows.append(["bare Django view", "", "", "", "", f"{floor.cpu_ms:.2f} ms", "1.00",
                     f"{floor.p50_ms:.1f}", ""])  # fmt: skip
        common_cpu = None
        for label, term in TERMS:
            query_ms, matches, plan, read = _query_cost(thread, term, n=20)

            def get(term=term) -> None:
                session.get(
                    f"{server.url}/messages/search/",
                    params={"q": term},
                    headers={"HX-Request": "true"},
                    timeout=30,
                ).raise_for_status()

            cost = harness.measure(server, get, n=args.requests, warmup=3)
            common_cpu = common_cpu or cost.cpu_ms
            rows.append(
                [
                    f"{label}: {term}",
                    str(matches),
                    f"{query_ms:.2f} ms",
                    f"{read:,}",
                    plan,
                    f"{cost.cpu_ms:.2f} ms",
                    f"{cost.ratio(floor):.2f}",
                    f"{cost.p50_ms:.1f}",
                    f"{cost.cpu_ms / common_cpu:.2f}×",
                ]
            )
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
