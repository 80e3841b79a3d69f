"""The staff list found and filtered: what ?q= and each filter cost at 10,000 customers, against
the plain list (the goal: within 3×), with each query's plan.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_staffsearch \\
        .venv/bin/python -m bench.staff_search [--customers 10000] [--requests 100]

PostgreSQL only (the trigram indexes are PostgreSQL's). The world: `--customers` customers
(bulk-created by harness.build_world), every tenth with a second project ("Fence Repair",
planning), an address each, every fourth assigned to the bench's staff user, every twentieth
opted out of SMS; two or three messages in each thread, every third customer's last one
theirs and unread. Messages are bulk-inserted with the counters the actions would have set, as
harness.fill_thread does for long histories (the actions take minutes for 25,000 appends).

Each case is measured twice: GET /staff/projects/?… through the real server (server CPU per
request, client p50 and its ratio to the plain list's p50: PostgreSQL's time is in the p50,
not in the server's CPU) and, in this process, the list's queries (how many: rows, customer
counts, status counts) under EXPLAIN ANALYZE: execution time, the plan's nodes, the rows
read. With --plans, each query's whole plan after the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from bench import harness

CASES = [
    ("plain list", {}),
    ("q: one name", {"q": "customer 04321"}),
    ("q: ten names", {"q": "customer 0432"}),
    ("q: every name", {"q": "customer"}),
    ("q: phone, other format", {"q": "(555) 000-4321"}),
    ("q: email", {"q": "customer4321@"}),
    ("q: address", {"q": "4321 elm"}),
    ("q: project code", {"q": "PRJ-14321"}),
    ("q: project title (1 in 10)", {"q": "fence"}),
    ("q: nobody", {"q": "zebra"}),
    ("q: 2 chars (no trigram)", {"q": "zz"}),
    ("q: hostile, 10,000 chars", {"q": "%_" * 5000}),
    ("filter: Unread", {"show": "unread"}),
    ("filter: Needs reply", {"show": "needs_reply"}),
    ("filter: Mine", {"show": "mine"}),
    ("filter: Unassigned", {"show": "unassigned"}),
    ("filter: Opted out of SMS", {"show": "opted_out"}),
    ("filter: status Planning", {"status": "planning"}),
    ("q + Needs reply", {"q": "customer 04", "show": "needs_reply"}),
]


def build(customers: int):
    """The world described above; returns the staff user."""
    from django.db import connection
    from django.utils import timezone

    from messaging.models import Entry, Thread
    from notifications.models import NotificationPreferences
    from portal.models import Customer, Project

    world = harness.build_world(customers=customers)
    people = world.customers
    staff = world.staff
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portal_customer SET address = "
            "(id % 9000 + 1)::text || ' Elm Street, Springfield'"
        )
    # Each address must say which customer it is for the one-customer case below.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE portal_customer SET address = %s WHERE name = %s",
            ["4321 Elm Street, Springfield", "Customer 04321"],
        )
    Customer.objects.filter(pk__in=[c.pk for c in people[::4]]).update(assigned_to=staff)
    Project.objects.bulk_create(
        Project(customer=c, code=f"PRJ-F{i:05d}", title="Fence Repair", status="planning")
        for i, c in enumerate(people[::10])
    )
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(customer=c, sms_opted_out_at=timezone.now()) for c in people[::20]
    )
    threads = {t.customer_id: t for t in Thread.objects.all()}
    now = timezone.now()
    K, C = Entry.Kind, Entry.Channel
    for start in range(0, len(people), 1000):
        entries, changed = [], []
        for i, customer in enumerate(people[start : start + 1000], start=start):
            thread = threads[customer.pk]
            at = now - dt.timedelta(minutes=7 * i + 3)
            rows = [
                (K.CUSTOMER_REPLY, customer.user_id, at),
                (K.STAFF_MESSAGE, staff.pk, at + dt.timedelta(seconds=30)),
            ]
            if i % 3 == 0:
                rows.append((K.CUSTOMER_REPLY, customer.user_id, at + dt.timedelta(minutes=1)))
            for seq, (kind, author, when) in enumerate(rows, start=1):
                entries.append(
                    Entry(
                        thread=thread,
                        seq=seq,
                        kind=kind,
                        channel=C.SMS,
                        author_id=author,
                        body=harness.body(i + seq),
                        created_at=when,
                    )  # fmt: skip
                )
            replies = sum(kind == K.CUSTOMER_REPLY for kind, _, _ in rows)
            thread.last_seq = len(rows)
            thread.last_entry_at = rows[-1][2]
            thread.staff_inbound = replies
            thread.staff_read = replies - (1 if i % 3 == 0 else 0)
            thread.customer_inbound = thread.customer_read = 1
            thread.last_message_kind = rows[-1][0]
            changed.append(thread)
        Entry.objects.bulk_create(entries)
        Thread.objects.bulk_update(
            changed,
            ["last_seq", "last_entry_at", "staff_inbound", "staff_read", "customer_inbound",
             "customer_read", "last_message_kind"],
        )  # fmt: skip
    return staff


def _explain(sql: str, params) -> tuple[float, str, int]:
    """(execution ms, the plan's node types and indexes, rows read by scans)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        result = cursor.fetchone()[0]
    result = json.loads(result) if isinstance(result, str) else result
    plan = result[0]
    nodes, read = [], 0

    def visit(node: dict) -> None:
        nonlocal read
        name = node["Node Type"]
        if "Index Name" in node:
            name += f" {node['Index Name']}"
        elif "Relation Name" in node:
            name += f" {node['Relation Name']}"
        nodes.append(name)
        if "Scan" in node["Node Type"]:
            read += node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        for child in node.get("Plans", []):
            visit(child)

    visit(plan["Plan"])
    return plan["Execution Time"], ", ".join(dict.fromkeys(nodes)), int(read)


def _explain_text(sql: str) -> str:
    """The query's plan as PostgreSQL prints it, with actual times and rows (for --plans)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _page_queries(staff, params: dict):
    """The SQL of the queries the page runs for its rows and counts (three)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.queries import StaffListQuery, staff_project_page

    query = StaffListQuery.from_params(params)
    with CaptureQueriesContext(connection) as captured:
        staff_project_page(query=query, viewer=staff)
        query.counts(viewer=staff)
    # CaptureQueriesContext keeps the SQL with parameters interpolated; re-run it as such.
    return [q["sql"] for q in captured.captured_queries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    parser.add_argument(
        "--plans", action="store_true", help="also print each query's full EXPLAIN ANALYZE plan"
    )
    args = parser.parse_args(argv)

    database_url, redis_url = harness.setup_django()
    from django.db import connection

    print(f"bench.staff_search · {harness.machine()} · server {args.server} · "
          f"{args.customers:,} customers")  # fmt: skip
    harness.reset(redis_url)
    staff = build(args.customers)
    harness.analyze()
    server = harness.start_server(database_url, redis_url, server=args.server)
    rows = [["case", "server CPU/request", "p50", "× plain p50", "list queries", "rows query",
             "counts", "status counts"]]  # fmt: skip
    plans, full_plans = [], []
    try:
        session = harness.signed_in_session(server.url, staff)
        plain = None
        for label, params in CASES:

            def get(params=params) -> None:
                response = session.get(server.url + "/staff/projects/", params=params, timeout=30)
                response.raise_for_status()

            cost = harness.measure(server, get, n=args.requests)
            plain = plain or cost
            timings = []
            queries = _page_queries(staff, params)
            for which, sql in zip(("rows", "counts", "status counts"), queries, strict=True):
                ms, nodes, read = _explain(sql, None)
                timings.append(f"{ms:.1f} ms, {read:,} rows read")
                plans.append((label, sql[:80], ms, nodes))
                if args.plans:
                    full_plans.append((f"{label} · {which}", _explain_text(sql)))
            rows.append(
                [label, f"{cost.cpu_ms:.2f} ms", f"{cost.p50_ms:.1f}",
                 f"{cost.p50_ms / plain.p50_ms:.2f}", str(len(queries)), *timings]
            )  # fmt: skip
            print(" | ".join(rows[-1]), flush=True)  # as it goes: a long run shows progress
    finally:
        server.stop()
        connection.close()
    print(harness.table(rows))
    print()
    for label, sql, ms, nodes in plans:
        print(f"{label} · {sql}… · {ms:.1f} ms\n    {nodes}")
    for label, plan in full_plans:
        print(f"\n### {label}\n{plan}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
