"""Transcripts: what the JSON and the PDF of a long thread cost, in this process and through
the real ASGI server.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_transcripts \\
    REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python -m bench.transcripts [--entries 100000]

The thread is bulk-built (harness.fill_thread: every kind and channel), each staff and
automated message with an SMS and an email Delivery, delivered. (The fill's cards link to
/invoices/, which names no document: the document lookup is not exercised.) In process,
each copy is generated once: wall time, query count, and how far the process's peak RSS
(VmHWM, reset before) rose above its RSS before. Through uvicorn, each is downloaded once:
time to the first byte, total time, size, and the server's peak RSS (VmHWM, reset before).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench import harness


def _add_receipts(thread, customer) -> int:
    """An SMS and an email Delivery, delivered, for each business message."""
    from messaging.models import Entry
    from notifications.models import Delivery

    messages = Entry.objects.filter(
        thread=thread, kind__in=[Entry.Kind.STAFF_MESSAGE, Entry.Kind.AUTOMATED]
    ).values_list("pk", "created_at")
    rows = []
    for pk, at in messages.iterator(chunk_size=5000):
        for channel, recipient in (("sms", customer.phone), ("email", customer.email)):
            rows.append(
                Delivery(
                    entry_id=pk,
                    channel=channel,
                    audience="customer",
                    recipient=str(recipient),
                    status="delivered",
                    provider_id=f"{channel}-{pk}",
                    send_after=at,
                    created_at=at,
                    sent_at=at + dt.timedelta(seconds=2),
                    delivered_at=at + dt.timedelta(seconds=9),
                )  # fmt: skip
            )
        if len(rows) >= 10000:
            Delivery.objects.bulk_create(rows)
            rows = []
    Delivery.objects.bulk_create(rows)
    return Delivery.objects.filter(entry__thread=thread).count()


def _in_process(make, *, label: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.images import peak_rss_mb, peak_rss_reset, rss_mb

    before = rss_mb()
    peak_rss_reset()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        size = sum(len(piece) for piece in make())
    seconds = time.perf_counter() - started
    row = [
        label,
        f"{seconds:.1f} s",
        f"{size / 1e6:.1f} MB",
        f"{peak_rss_mb() - before:+.0f} MB (of {peak_rss_mb():.0f})",
        str(len(queries)),
    ]
    print(" | ".join(row), flush=True)
    return row


def _over_http(server, session, url: str, *, label: str) -> list[str]:
    from tests.images import peak_rss_mb, peak_rss_reset

    pid = server.process.pid
    before = peak_rss_mb(pid)
    peak_rss_reset(pid)
    started = time.perf_counter()
    with session.get(server.url + url, stream=True, timeout=600) as response:
        response.raise_for_status()
        first = None
        size = 0
        for block in response.iter_content(64 * 1024):
            if first is None:
                first = time.perf_counter() - started
            size += len(block)
    total = time.perf_counter() - started
    row = [
        label,
        f"{first * 1000:.0f} ms",
        f"{total:.1f} s",
        f"{size / 1e6:.1f} MB",
        f"{peak_rss_mb(pid):.0f} MB (before: {before:.0f} MB)",
    ]
    print(" | ".join(row), flush=True)
    return row


def _signed_in(server, user):
    # The sign-in has a 10 s timeout; on a machine shared with other benches it can miss it.
    import requests

    for attempt in range(3):
        try:
            return harness.signed_in_session(server.url, user)
        except requests.Timeout:
            if attempt == 2:
                raise
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the thread a previous run built, if there is one"
    )
    args = parser.parse_args(argv)

    database_url, redis_url = harness.setup_django()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from messaging import transcripts
    from messaging.models import Thread

    print(f"bench.transcripts · {harness.machine()} · {args.entries:,} entries", flush=True)
    thread = Thread.objects.select_related("customer").filter(last_seq=args.entries).first()
    if args.reuse and thread is not None:
        customer = thread.customer
        staff = get_user_model().objects.get(username="bench-staff")
    else:
        harness.reset(redis_url)
        world = harness.build_world(customers=1)
        customer, staff = world.customers[0], world.staff
        started = time.perf_counter()
        harness.fill_thread(customer=customer, staff=staff, entries=args.entries)
        thread = customer.thread
        thread.refresh_from_db()
        deliveries = _add_receipts(thread, customer)
        harness.analyze()
        print(f"built in {time.perf_counter() - started:.0f} s: {deliveries:,} deliveries")

    staff_copy = transcripts.transcript_for(thread=thread, staff=True)
    customer_copy = transcripts.transcript_for(thread=thread, staff=False)
    now = timezone.now()
    rows = [["in process", "time", "size", "peak RSS growth", "queries"]]
    rows.append(_in_process(lambda: transcripts.json_chunks(staff_copy), label="staff JSON"))
    rows.append(_in_process(lambda: transcripts.json_chunks(customer_copy), label="customer JSON"))
    rows.append(
        _in_process(
            lambda: transcripts.pdf_with_hash(staff_copy, generated_at=now),
            label="staff PDF (hash pass + PDF pass)",
        )
    )
    print(harness.table(rows))

    server = harness.start_server(database_url, redis_url)
    try:
        staff_session = _signed_in(server, staff)
        customer_session = _signed_in(server, customer.user)
        http = [["through uvicorn (ASGI)", "first byte", "total", "size", "server peak RSS"]]
        base = f"/staff/chat/{thread.pk}/transcript"
        http.append(_over_http(server, staff_session, f"{base}.json", label="staff .json"))
        http.append(_over_http(server, staff_session, f"{base}.pdf", label="staff .pdf"))
        http.append(
            _over_http(server, customer_session, "/messages/transcript.pdf", label="customer .pdf")
        )
        print(harness.table(http))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
