"""Pages: what the Messages page, the staff chat modal and the staff list cost through the real
server, for a short and a long history, a few and many projects, against the bare view.

    SECRET_KEY=x .venv/bin/python -m bench.pages [--threads 10,10000] [--projects 10,1000]

Each figure is the server's CPU per request (its process group, from /proc) over --requests
back-to-back requests on one keep-alive connection, the client's p50 latency, and the number
of queries per request (counted in this process with Django's test client on the same
database). Ratios: each page against the bare view (the goal is ≤ 3×), the long history
against the short (≤ 1.2×), many projects against few (≤ 3×, same queries).
"""

from __future__ import annotations

import argparse
import datetime as dt

from bench import harness


def _queries(client, url: str, **headers) -> tuple[int, int]:
    """(queries, status) of one GET in this process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, **headers)  # the first visit may mark things read
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    return len(captured.captured_queries), response.status_code


def _page(server, session, url: str, *, n: int, headers: dict | None = None) -> harness.Cost:
    def get() -> None:
        session.get(server.url + url, headers=headers or {}, timeout=30).raise_for_status()

    return harness.measure(server, get, n=n)


def _first_visits(server, session, thread, *, n: int) -> harness.Cost:
    """GET /messages/ as a first visit, n times: before each, this process puts the customer's
    read state back to "never opened" (watermark, counter and read marks), so every request
    reads the whole history (the server's CPU is counted around the request only)."""
    import time

    from messaging.models import Entry, Thread

    try:
        from messaging.models import ReadMark
    except ImportError:  # `bench.all --before` on code that stamped read_at on every entry
        ReadMark = None

    def forget() -> None:
        if ReadMark is None:
            Entry.objects.filter(thread=thread).update(read_at=None)
        else:
            ReadMark.objects.filter(thread=thread).delete()
        Thread.objects.filter(pk=thread.pk).update(customer_read_seq=0, customer_read=0)

    cpu, times = 0.0, []
    for i in range(n + 5):
        forget()
        before = server.cpu_seconds()
        started = time.perf_counter()
        session.get(server.url + "/messages/", timeout=60).raise_for_status()
        if i >= 5:  # warm-up
            times.append((time.perf_counter() - started) * 1000)
            cpu += server.cpu_seconds() - before
    return harness.Cost(
        cpu_ms=cpu * 1000 / n,
        p50_ms=harness.percentile(times, 50),
        p99_ms=harness.percentile(times, 99),
        n=n,
    )


def fill_project_list(world, *, unread_every: int = 3) -> None:
    """Two or three messages in each customer's thread, every third with an unread reply."""
    from django.db import transaction
    from django.utils import timezone

    from messaging import actions
    from messaging.models import Side, Thread

    now = timezone.now()
    threads = {t.customer_id: t for t in Thread.objects.all()}
    for start in range(0, len(world.customers), 500):
        with transaction.atomic():
            for i, customer in enumerate(world.customers[start : start + 500], start=start):
                at = now - dt.timedelta(minutes=7 * i + 3)
                thread = threads[customer.pk]
                thread.customer = customer
                actions.post_customer_reply(
                    customer=customer, body=harness.body(i), at=at, notify=False
                )
                actions.post_staff_message(
                    thread=thread, author=world.staff, body=harness.body(i + 1), at=at, notify=False
                )
                if i % unread_every == 0:
                    actions.post_customer_reply(
                        customer=customer,
                        body=harness.body(i + 2),
                        at=at + dt.timedelta(minutes=1),
                        notify=False,
                    )
                else:
                    actions.mark_read(thread=thread, side=Side.STAFF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="10,10000", help="history lengths, short,long")
    parser.add_argument("--projects", default="10,1000", help="project counts, few,many")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--server", default=harness.PRODUCTION_SERVER, choices=harness.SERVERS)
    args = parser.parse_args(argv)
    short, long = (int(x) for x in args.threads.split(","))
    few, many = (int(x) for x in args.projects.split(","))

    database_url, redis_url = harness.setup_django()
    from django.test import Client

    from messaging.models import Thread

    print(f"bench.pages · {harness.machine()} · server {args.server}")
    server = harness.start_server(database_url, redis_url, server=args.server)
    rows = [["page", "server CPU/request", "× bare", "p50", "queries", "vs smaller"]]
    try:
        harness.reset(redis_url)
        world = harness.build_world(customers=2)
        staff_session = harness.signed_in_session(server.url, world.staff)
        floor = harness.bare_cost(server, staff_session, n=args.requests)
        rows.append(
            ["bare Django view", f"{floor.cpu_ms:.2f} ms", "1.00", f"{floor.p50_ms:.1f}", "0", ""]
        )

        # The Messages page and the staff modal, for a short and a long history.
        for customer, size in zip(world.customers, (short, long), strict=True):
            harness.fill_thread(customer=customer, staff=world.staff, entries=size)
        harness.analyze()
        costs = {}
        for customer, size in zip(world.customers, (short, long), strict=True):
            session = harness.signed_in_session(server.url, customer.user)
            client = Client()
            client.force_login(customer.user)
            costs["messages", size] = _page(server, session, "/messages/", n=args.requests)
            queries, _ = _queries(client, "/messages/")
            thread = Thread.objects.get(customer=customer)
            modal = f"/staff/chat/{thread.pk}/"
            costs["modal", size] = _page(
                server, staff_session, modal, n=args.requests, headers={"HX-Request": "true"}
            )
            staff_client = Client()
            staff_client.force_login(world.staff)
            modal_queries, _ = _queries(staff_client, modal, HTTP_HX_REQUEST="true")
            for name, count in (("messages", queries), ("modal", modal_queries)):
                cost = costs[name, size]
                vs = f"{cost.cpu_ms / costs[name, short].cpu_ms:.2f}×" if size == long else ""
                label = "GET /messages/" if name == "messages" else "staff modal"
                rows.append(
                    [
                        f"{label}, {size:,} entries",
                        f"{cost.cpu_ms:.2f} ms",
                        f"{cost.ratio(floor):.2f}",
                        f"{cost.p50_ms:.1f}",
                        str(count),
                        vs,
                    ]
                )

        # Goal 4: a first visit to the long thread (the customer has read nothing) against a
        # repeat visit: reading is a watermark and one mark, whatever the history's length.
        customer = world.customers[1]
        thread = Thread.objects.get(customer=customer)
        session = harness.signed_in_session(server.url, customer.user)
        first = _first_visits(server, session, thread, n=max(20, args.requests // 4))
        repeat = costs["messages", long]
        rows.append(
            [
                f"GET /messages/, first visit, {long:,} entries",
                f"{first.cpu_ms:.2f} ms",
                f"{first.ratio(floor):.2f}",
                f"{first.p50_ms:.1f}",
                "",
                f"{first.cpu_ms / repeat.cpu_ms:.2f}× repeat",
            ]
        )

        # The staff list, for a few and many projects.
        list_costs = {}
        for count in (few, many):
            harness.reset(redis_url)
            world = harness.build_world(customers=count)
            fill_project_list(world)
            harness.analyze()
            staff_session = harness.signed_in_session(server.url, world.staff)
            list_costs[count] = _page(server, staff_session, "/staff/projects/", n=args.requests)
            client = Client()
            client.force_login(world.staff)
            queries, _ = _queries(client, "/staff/projects/")
            cost = list_costs[count]
            vs = f"{cost.cpu_ms / list_costs[few].cpu_ms:.2f}×" if count == many else ""
            rows.append(
                [
                    f"staff list, {count:,} projects",
                    f"{cost.cpu_ms:.2f} ms",
                    f"{cost.ratio(floor):.2f}",
                    f"{cost.p50_ms:.1f}",
                    str(queries),
                    vs,
                ]
            )
    finally:
        server.stop()
    print(harness.table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
