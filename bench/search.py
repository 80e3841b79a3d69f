"""Search: what finding a word costs on a long thread, for a word in most entries, a word in
a few, a word in none, and a phrase, against the bare view.

    SECRET_KEY=x .venv/bin/python -m bench.search [--entries 100000]

PostgreSQL only (SQLite searches by substring, a laptop's few rows). Each term is measured
twice: the search alone in this process (its median wall time; each query's plan and the rows
it read, from EXPLAIN ANALYZE), and GET /messages/search/ through the real
server (server CPU per request, client p50, ratio to the bare view). The server's CPU leaves out
PostgreSQL's time, so the goals are judged on the client's p50, which has both: every term
≤ 50 ms on 100,000 entries, and within 3× of the common word.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import harness

RARE = "chimney"  # written into RARE_COUNT entries spread over the history
RARE_COUNT = 3
LIMIT = 30  # search_entries' default: the results page shows the newest 30
TERMS = [
    ("common word", "deck"),
    ("rare word", RARE),
    ("absent word", "zebra"),
    ("phrase", '"side gate"'),
    ("two words", "railing saw"),
    ("a word left out", "lunch -deck"),
    ("absent phrase", '"saw thanks"'),  # both words common, never adjacent
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
    """(median ms, matches, plans, rows read) of search_entries in this process: each query
    it ran, explained with EXPLAIN ANALYZE (plans joined by " + ", rows read summed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messaging import queries
    from messaging.models import Side

    def search():
        return queries.search_entries(
            thread=thread, audience=Side.CUSTOMER, query=query, limit=LIMIT
        )

    times = []
    for _ in range(n):
        started = time.perf_counter()
        search()
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        found = search()
    plans, read = [], 0
    with connection.cursor() as cursor:
        for executed in captured.captured_queries:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {executed['sql']}")
            plan = cursor.fetchone()[0][0]["Plan"]
            plans.append(_describe(plan))
            read += _rows_read(plan)
    return statistics.median(times), len(found), " + ".join(plans), read


def _describe(plan: dict) -> str:
    """How the query found its rows: its scans, with their indexes."""
    names = {"Index Scan": "walk", "Index Only Scan": "walk", "Bitmap Index Scan": "bitmap",
             "Seq Scan": "whole table"}  # fmt: skip
    scans = []

    def visit(node: dict) -> None:
        if node["Node Type"] in names:
            scans.append(f"{names[node['Node Type']]} {node.get('Index Name', '')}".strip())
        for child in node.get("Plans") or []:
            visit(child)

    visit(plan)
    return " & ".join(scans) or "no table"


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
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)

    database_url, redis_url = harness.setup_django()
    from django.db import connection

    from messaging.models import Thread

    if connection.vendor != "postgresql":
        harness.refuse("bench.search measures PostgreSQL's full-text search; set DATABASE_URL")
    print(f"bench.search · {harness.machine()} · server {args.server} · {args.entries:,} entries")
    server = harness.start_server(database_url, redis_url, server=args.server)
    rows = [["term", "matches", "query (median)", "rows read", "plan", "server CPU", "× bare",
             "p50", "p50 vs common"]]  # fmt: skip
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
        common_p50 = None
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
            common_p50 = common_p50 or cost.p50_ms
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
                    f"{cost.p50_ms / common_p50:.2f}×",
                ]
            )
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
