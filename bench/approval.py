"""Issue 21's pages and verbs: the estimate page with its signing form, a signed approval,
the invoice page with payments, and one `invoice.paid` payment. Queries are counted in this
process (Django's test client, the real views and actions); the estimate page's latency and
server CPU are measured through the real server, against the bare floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_x \\
    REDIS_URL=redis://127.0.0.1:6379/7 .venv/bin/python -m bench.approval [--lines 40]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from bench import harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=40, help="lines per estimate and invoice")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--approvals", type=int, default=30)
    args = parser.parse_args()
    database_url, redis_url = harness.setup_django()
    harness.reset(redis_url)

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from crm_events import actions
    from crm_events.models import Invoice

    world = harness.build_world(customers=1)
    (customer,) = world.customers
    project = customer.projects.first()

    def lines(n: int) -> list[actions.LineData]:
        made = [
            actions.LineData(f"Line {i}", Decimal(1), Decimal("100.00"), optional=i % 5 == 4)
            for i in range(n)
        ]
        return made

    terms = "50% deposit on approval, the balance on completion. " * 20
    for k in range(args.approvals + 1):
        actions.send_estimate(
            customer=customer,
            project=project,
            number=f"E{k}",
            lines=lines(args.lines),
            currency="USD",
            terms=terms,
            notify=False,
        )
    actions.send_invoice(
        customer=customer,
        project=project,
        number="I1",
        lines=lines(args.lines)[:1] * 1,
        currency="USD",
        payment_url="https://checkout.stripe.com/c/pay/bench",
        notify=False,
    )
    invoice = Invoice.objects.get(number="I1")
    for k in range(10):
        actions.record_payment(
            invoice=invoice, amount=Decimal("1.00"), payment_id=f"p{k}", method="card", notify=False
        )
    harness.analyze()

    client = Client()
    client.force_login(customer.user)
    rows = [["what", "queries", "ms (median in process)"]]

    def counted(label: str, call, repeat: int = 20) -> None:
        times, queries = [], None
        for i in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                call(i)
                times.append((time.perf_counter() - started) * 1000)
            queries = len(captured)
        rows.append([label, str(queries), f"{harness.percentile(times, 50):.1f}"])

    counted("GET /estimates/E0/ (signing form)", lambda i: client.get("/estimates/E0/"))
    counted("GET /invoices/I1/ (10 payments, Pay)", lambda i: client.get("/invoices/I1/"))
    optional = [str(p) for p in range(4, args.lines, 5)][:2]
    counted(
        "POST approve (signed, 2 options)",
        lambda i: client.post(
            f"/estimates/E{i + 1}/approve/",
            {"version": 1, "name": "Customer Signer", "agree": "on", "options": optional},
        ),
        repeat=args.approvals,
    )
    counted(
        "record_payment (receipt card)",
        lambda i: actions.record_payment(
            invoice=invoice, amount=Decimal("1.00"), payment_id=f"q{i}", method="card"
        ),
    )
    print(f"bench.approval · {args.lines} lines · {harness.machine()}")
    print(harness.table(rows))

    server = harness.start_server(database_url, redis_url)
    try:
        session = harness.signed_in_session(server.url, customer.user)
        floor = harness.bare_cost(server, session)

        def get() -> None:
            session.get(server.url + "/estimates/E0/", timeout=10).raise_for_status()

        page = harness.measure(server, get, n=args.requests)
    finally:
        server.stop()
    print()
    print(
        harness.table(
            [
                ["through the server", "CPU ms/req", "p50 ms", "p99 ms", "× floor"],
                [
                    "bare floor",
                    f"{floor.cpu_ms:.1f}",
                    f"{floor.p50_ms:.1f}",
                    f"{floor.p99_ms:.1f}",
                    "1",
                ],
                [
                    "GET /estimates/E0/",
                    f"{page.cpu_ms:.1f}",
                    f"{page.p50_ms:.1f}",
                    f"{page.p99_ms:.1f}",
                    f"{page.ratio(floor):.1f}",
                ],
            ]
        )
    )


if __name__ == "__main__":
    main()
