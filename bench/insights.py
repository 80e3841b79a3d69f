"""Insights (/staff/insights/) at 1,000,000 entries: each section's queries, the whole page,
and the plans.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_insights \\
        REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m bench.insights \\
        [--customers 5000] [--entries 1000000] [--repeat 5] [--plans] [--reuse]

PostgreSQL only (the response times are). The world: `--customers` customers (bulk-created by
harness.build_world), a quarter of them assigned to the bench's staff user, and `--entries`
entries spread evenly over their threads and over the last two years, inserted by one
INSERT … SELECT over generate_series (the actions would take hours for a million appends).
Each thread cycles customer reply, customer reply, staff message, automated message, internal
note, on all three channels, a few hours apart; the thread counters are set to match. One staff
message in twenty of the last 90 days has a delivery, a tenth of those failed with one of five
provider errors; one customer in twenty opted out of SMS this month.

Each section is timed in this process (best and median of --repeat, with its query count) for
7, 30 and 90 days, then the whole page through Django's test client (the view, every query, the
template), then EXPLAIN ANALYZE of the response-time query and of the volume query.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import harness


def build(customers: int, entries: int):
    from django.db import connection
    from django.utils import timezone

    from notifications.models import NotificationPreferences
    from portal.models import Customer

    world = harness.build_world(customers=customers)
    staff = world.staff
    Customer.objects.filter(pk__in=[c.pk for c in world.customers[::4]]).update(assigned_to=staff)
    per_thread = max(entries // customers, 1)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # A thread is a conversation of five entries every 730 / (per_thread / 5) days, shifted
        # by the thread (so every day has messages); within one, entries are 45 minutes to 7.5
        # hours apart depending on the thread (so the waits differ, some across nights).
        cursor.execute(
            """
            INSERT INTO messaging_entry (thread_id, seq, kind, channel, author_id, body, urgent,
                card_kind, link_url, transcript, attachment_count, created_at)
            SELECT t.id, n,
                   (ARRAY['customer_reply', 'customer_reply', 'staff_message', 'automated',
                          'internal_note'])[n %% 5 + 1],
                   CASE WHEN n %% 5 = 4 THEN 'system'
                        ELSE (ARRAY['portal', 'sms', 'email'])[(t.id + n) %% 3 + 1] END,
                   CASE WHEN n %% 5 IN (0, 1) THEN c.user_id
                        WHEN n %% 5 IN (2, 4) THEN %(staff)s END,
                   'Bench message ' || n, false, '', '', '', 0,
                   %(now)s - interval '731 days'
                       + ((n - 1) / 5) * (interval '730 days' / (%(per_thread)s / 5))
                       + (t.id %% 24) * interval '1 hour'
                       + ((n - 1) %% 5) * 45 * (1 + t.id %% 10) * interval '1 minute'
                       + ((t.id * n) %% 40) * interval '1 minute'
            FROM messaging_thread t
            JOIN portal_customer c ON c.id = t.customer_id
            -- One thread in three ends on an unanswered customer message.
            CROSS JOIN generate_series(1, %(per_thread)s - 1 + t.id %% 3) AS n
            """,
            {"staff": staff.pk, "now": timezone.now(), "per_thread": per_thread},
        )
        cursor.execute(
            """
            UPDATE messaging_thread t SET last_seq = last.seq, last_entry_at = last.created_at,
                   last_message_kind = last.kind
            FROM (SELECT DISTINCT ON (thread_id) thread_id, seq, created_at, kind
                  FROM messaging_entry WHERE kind <> 'internal_note'
                  ORDER BY thread_id, seq DESC) last
            WHERE last.thread_id = t.id
            """
        )
        cursor.execute(
            """
            INSERT INTO notifications_delivery (entry_id, channel, audience, recipient, status,
                hold_reason, provider_id, attempts, last_error, send_after, created_at,
                sent_at, failed_at, updated_at)
            SELECT e.id, 'sms', 'customer', '+15550000000',
                   CASE WHEN e.id %% 200 = 0 THEN 'failed' ELSE 'delivered' END, '',
                   'SM' || e.id, 1,
                   CASE WHEN e.id %% 200 <> 0 THEN ''
                        ELSE (ARRAY['Carrier reported undelivered (Twilio 30006)',
                                    'Carrier reported failed (Twilio 30003)',
                                    'Twilio 21610: Attempt to send to unsubscribed recipient',
                                    'Email bounced: 550 5.1.1 user ' || e.id || ' unknown',
                                    'No worker finished sending it in 5 attempts'])
                             [(e.id / 200) %% 5 + 1] END,
                   e.created_at, e.created_at, e.created_at,
                   CASE WHEN e.id %% 200 = 0 THEN e.created_at + interval '1 minute' END,
                   e.created_at
            FROM messaging_entry e
            WHERE e.kind = 'staff_message' AND e.created_at >= %(now)s - interval '90 days'
              AND e.id %% 20 = 0
            """,
            {"now": timezone.now()},
        )
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(customer=c, time_zone=c.time_zone, sms_opted_out_at=timezone.now())
        for c in world.customers[::20]
    )
    return staff, time.perf_counter() - started


def timed(call, repeat: int) -> tuple[float, float, int]:
    """(best ms, median ms, queries) of `call`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        queries = len(captured.captured_queries)
    return min(times), statistics.median(times), queries


def explain(sql: str, params) -> tuple[float, list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        lines = [row[0] for row in cursor.fetchall()]
    total = next(float(line.split()[2]) for line in lines if line.startswith("Execution Time"))
    return total, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print the full plans")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the world the last run built, if any"
    )
    args = parser.parse_args(argv)

    _, redis_url = harness.setup_django()
    from django.db import connection
    from django.test import Client

    from messaging.models import Entry
    from portal import insights
    from portal.models import Business

    if args.reuse and Entry.objects.exists():
        from django.contrib.auth import get_user_model

        staff, seconds = get_user_model().objects.get(is_staff=True), 0.0
    else:
        harness.reset(redis_url)
        staff, seconds = build(args.customers, args.entries)
        harness.analyze()
    business = Business.objects.get()
    print(f"bench.insights · {harness.machine()} · {Entry.objects.count():,} entries in "
          f"{args.customers:,} threads (inserted in {seconds:.0f} s)")  # fmt: skip

    rows = [["section", "days", "best ms", "median ms", "queries"]]
    for days in insights.PERIODS:
        period = insights.Period.last(days=days, zone=business.time_zone)
        sections = [
            ("response times",
             lambda p=period: insights.response_times(period=p, business=business)),
            ("messages by day", lambda p=period: insights.message_volume(period=p)),
            ("waiting now", insights.waiting_now),
            ("failures", lambda p=period: insights.delivery_failures(period=p)),
            ("opt-outs", lambda p=period: insights.opt_outs(period=p)),
            ("per staff", lambda p=period: insights.per_staff(period=p, responses={}, waiting=[])),
        ]  # fmt: skip
        for label, call in sections:
            best, median, queries = timed(call, args.repeat)
            rows.append([label, str(days), f"{best:.0f}", f"{median:.0f}", str(queries)])

    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    for days in insights.PERIODS:

        def page(days=days) -> None:
            response = client.get("/staff/insights/", {"days": days})
            assert response.status_code == 200, response.status_code

        best, median, queries = timed(page, args.repeat)
        rows.append(["whole page (GET)", str(days), f"{best:.0f}", f"{median:.0f}", str(queries)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))

    period = insights.Period.last(days=90, zone=business.time_zone)
    params = {
        "start": period.start,
        "end": period.end,
        "zone": business.time_zone,
        "opens": business.opens_at,
        "closes": business.closes_at,
        "open_days": business.open_weekdays,
    }
    response_sql = insights.RESPONSE_SQL.format(buckets=insights._bucket_sql())
    ms, plan = explain(response_sql, params)
    print(f"\nEXPLAIN ANALYZE response times, 90 days: {ms:.0f} ms")
    print("\n".join(plan if args.plans else [line for line in plan if "Scan" in line]))
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    query = (
        Entry.objects.filter(
            kind__in=["customer_reply", "staff_message", "automated"],
            created_at__gte=period.start,
            created_at__lt=period.end,
        )
        .annotate(day=TruncDate("created_at", tzinfo=period.zone))
        .values_list("day", "kind", "channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    sql, sql_params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", sql_params)
        plan = [row[0] for row in cursor.fetchall()]
    print("\nEXPLAIN ANALYZE messages by day, 90 days:")
    print(
        "\n".join(
            plan if args.plans else [line for line in plan if "Scan" in line or "Execution" in line]
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
