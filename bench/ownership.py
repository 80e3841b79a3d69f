"""What owning a conversation costs: planning a customer's message for its assignee rather than
for the business, an internal note with @mentions, an assignment (with its note), and the
staff list with an assignee control on every row.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_staff_own \\
        .venv/bin/python -m bench.ownership [--customers 1000] [--staff 20] [--runs 200]

In this process, on PostgreSQL, without Redis: each write runs in a transaction that is rolled
back (nothing is sent: the on-commit tasks never run), timed and its queries counted; the list
is rendered by Django's test client (no server: the figure is the view's and the templates'
cost, and its queries).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import harness


class _Rollback(Exception):
    pass


def measure(label: str, write, runs: int) -> None:
    from django.db import connection, reset_queries, transaction
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    for _ in range(runs):
        reset_queries()  # the query log keeps 9,000: counts past that would read as 0
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            try:
                with transaction.atomic():
                    write()
                    raise _Rollback
            except _Rollback:
                pass
            times.append((time.perf_counter() - start) * 1000)
        # SAVEPOINT/ROLLBACK are the bench's, not the write's.
        queries.append(len([q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]))
    p50 = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"| {label} | {p50:.2f} ms | {p90:.2f} ms | {statistics.median(queries):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    harness.setup_django(redis=False)
    harness.reset()

    from django.contrib.auth import get_user_model
    from django.test import Client

    from messaging import actions
    from notifications.models import StaffPushSubscription
    from notifications.outbound import preferences
    from portal.actions import assign_customer

    world = harness.build_world(customers=args.customers)
    User = get_user_model()
    colleagues = [
        User.objects.create(username=f"colleague{i}", first_name=f"Pat{i}", is_staff=True)
        for i in range(args.staff - 1)
    ]
    kim = colleagues[0]
    preferences.update_staff_preferences(user=kim, email_enabled=True, push_enabled=True)
    StaffPushSubscription.objects.create(
        user=kim, endpoint="https://127.0.0.1/push/kim", p256dh="x", auth="y"
    )
    unassigned, assigned = world.customers[0], world.customers[1]
    assign_customer(customer=assigned, assignee=kim)
    for i, customer in enumerate(world.customers[2::3]):
        assign_customer(customer=customer, assignee=colleagues[i % len(colleagues)])
    thread = actions.ensure_thread(customer=assigned)
    harness.analyze()

    print(f"{args.customers:,} customers, {args.staff} staff, {args.runs} runs each\n")
    print("| write (rolled back) | p50 | p90 | queries |")
    print("|---|---|---|---|")
    measure(
        "customer reply, unassigned thread (business: SMS)",
        lambda: actions.post_customer_reply(customer=unassigned, body="Any news?"),
        args.runs,
    )
    measure(
        "customer reply, assigned thread (assignee: email + push)",
        lambda: actions.post_customer_reply(customer=assigned, body="Any news?"),
        args.runs,
    )
    measure(
        "internal note, no mention",
        lambda: actions.add_internal_note(thread=thread, author=world.staff, body="Gate 4512"),
        args.runs,
    )
    mentions = " ".join(f"@{c.username}" for c in colleagues[:3]) + " @nobody"
    measure(
        "internal note, 3 mentions and an unknown name",
        lambda: actions.add_internal_note(thread=thread, author=world.staff, body=mentions),
        args.runs,
    )
    measure(
        "reassignment (with its note)",
        lambda: assign_customer(customer=unassigned, assignee=kim, by=world.staff),
        args.runs,
    )

    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(world.staff)
    client.get("/staff/projects/")  # warm: templates compiled, zone cached
    times, queries = [], 0
    for _ in range(max(args.runs // 4, 10)):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get("/staff/projects/")
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
        queries = len(captured.captured_queries)
    rows = response.content.decode().count('class="assignee-form"')
    print("\n| page | p50 | p90 | queries |")
    print("|---|---|---|---|")
    print(
        f"| /staff/projects/ ({rows} rows with an assignee control of {args.staff} staff) | "
        f"{statistics.median(times):.1f} ms | {statistics.quantiles(times, n=10)[-1]:.1f} ms "
        f"| {queries} |"
    )


if __name__ == "__main__":
    main()
