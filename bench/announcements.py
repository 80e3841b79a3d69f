"""Announcements: one message to 2,000 customers with a visit today, through a real Celery
worker to the fake Twilio and Postmark.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_announce \\
    REDIS_URL=redis://127.0.0.1:6379/13 SECRET_KEY=x \\
    .venv/bin/python -m bench.announcements [--customers 2000] [--sms-per-second 0]

Every customer has a visit today, SMS and email on and no quiet hours (2 deliveries each).
Staff preview and send through the real views (Django's test client in this process, queries
counted); the worker (tests.servers.CeleryWorker) runs the batches and the deliveries.
Reported, from outside the product: queries of the preview and of the send request; queries
per recipient appended (one batch run in this process first, on 50 other customers); time
to queue (the send request to every recipient appended, from the rows' own entries); and
deliveries per second through the fakes (the send request to the last delivery out of the
queue). `--sms-per-second 0` (the default here) lifts the pacing to show the capacity; with a
rate the batches are spread to it, which the achieved SMS rate shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid
import zoneinfo

from bench import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--sms-per-second", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    from tests.fakes.postmark import FakePostmark
    from tests.fakes.twilio import FakeTwilio

    twilio, postmark = FakeTwilio().start(), FakePostmark().start()
    anymail = postmark.settings()["ANYMAIL"]
    os.environ.update(
        {
            **{k: str(v) for k, v in twilio.settings().items()},
            "EMAIL_BACKEND": postmark.settings()["EMAIL_BACKEND"],
            "ANYMAIL_POSTMARK_SERVER_TOKEN": anymail["POSTMARK_SERVER_TOKEN"],
            "ANYMAIL_POSTMARK_API_URL": anymail["POSTMARK_API_URL"],
            "EMAIL_NOTIFICATION_DELAY_SECONDS": "0",
            "ANNOUNCEMENT_SMS_PER_SECOND": str(args.sms_per_second),
            "ANNOUNCEMENT_EMAIL_PER_SECOND": "0",
        }
    )
    database_url, redis_url = harness.setup_django()
    from tests.servers import CeleryWorker

    worker = CeleryWorker(
        env={"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"},
        concurrency=args.concurrency,
        name="bench-announcements",
    )
    try:
        return _run(args, worker, twilio, postmark, redis_url)
    finally:
        worker.stop()
        twilio.stop()
        postmark.stop()


def _queries(call) -> tuple[int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured.captured_queries), result


def _wait(condition, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.05)
    return True


def _run(args, worker, twilio, postmark, redis_url) -> int:
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone

    from crm_events.announcements import actions, audience
    from crm_events.announcements.models import AnnouncementRecipient
    from crm_events.models import Appointment
    from notifications.models import Delivery, NotificationPreferences
    from portal.models import CustomerTag

    print(f"bench.announcements · {harness.machine()} · {args.customers:,} customers")
    harness.reset(redis_url)
    extra = 50  # for the in-process batch's query count
    world = harness.build_world(customers=args.customers + extra)
    main, side = world.customers[: args.customers], world.customers[args.customers :]
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(customer=c, time_zone=c.time_zone, quiet_hours_enabled=False)
        for c in world.customers
    )
    business_zone = zoneinfo.ZoneInfo(world.business.time_zone)
    today = timezone.localdate(timezone.now(), business_zone)
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=business_zone)
    Appointment.objects.bulk_create(
        Appointment(
            customer=c,
            title="Gutter cleaning",
            starts_at=noon,
            ends_at=noon + dt.timedelta(hours=1),
        )
        for c in main
    )
    tag = CustomerTag.objects.create(name="bench")
    tag.customers.add(*side)
    harness.analyze()
    rows = [["measure", "figure"]]

    # Queries per recipient appended: one batch of the side announcement, in this process.
    settings.ANNOUNCEMENT_SEND_RATES = dict.fromkeys(settings.ANNOUNCEMENT_SEND_RATES, 0)
    side_announcement, _ = actions.start_announcement(
        business=world.business,
        author=world.staff,
        body="Bench {first_name}",
        choice=audience.Choice(audience="tag", tag=tag),
        form_token=uuid.uuid4(),
    )
    # (its first batch task went to Redis; this run claims the batch before the worker starts)
    batch_queries, appended = _queries(
        lambda: actions.send_batch(announcement_id=side_announcement.pk)
    )
    rows.append(
        [
            f"queries per recipient appended (a batch of {appended})",
            f"{batch_queries / appended:.1f}",
        ]
    )

    worker.start()
    pending = [Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.HELD]
    _wait(lambda: not Delivery.objects.filter(status__in=pending).exists(), args.timeout)
    before_sms, before_email = len(twilio.messages), len(postmark.emails)

    staff = Client()
    staff.force_login(world.staff)
    form = {
        "body": "Rain today, {first_name} — we'll call to rebook your {visit_time} visit.",
        "audience": "visit_on",
        "visit_date": today.isoformat(),
        "form_token": str(uuid.uuid4()),
    }
    staff.get("/staff/announcements/new/")  # the process's first request: imports, templates
    started = time.perf_counter()
    preview_queries, response = _queries(
        lambda: staff.post("/staff/announcements/new/", {**form, "action": "preview"})
    )
    preview_s = time.perf_counter() - started
    assert response.status_code == 200, response.content[:500]
    started = time.perf_counter()
    send_queries, response = _queries(
        lambda: staff.post("/staff/announcements/new/", {**form, "action": "send"})
    )
    send_s = time.perf_counter() - started
    assert response.status_code == 302, response.content[:500]
    announcement_id = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
    recipients = AnnouncementRecipient.objects.filter(announcement_id=announcement_id)
    queued = _wait(lambda: not recipients.filter(entry__isnull=True).exists(), args.timeout)
    queue_s = time.perf_counter() - started
    drained = _wait(lambda: not Delivery.objects.filter(status__in=pending).exists(), args.timeout)
    drain_s = time.perf_counter() - started
    deliveries = Delivery.objects.filter(entry__in=recipients.values("entry_id"))
    sent = deliveries.filter(status=Delivery.Status.SENT).count()
    sms = len(twilio.messages) - before_sms
    emails = len(postmark.emails) - before_email

    late = "" if queued and drained else " (timed out)"
    rows += [
        ["preview", f"{preview_s * 1000:,.0f} ms, {preview_queries} queries"],
        ["send request (recipients frozen)", f"{send_s * 1000:,.0f} ms, {send_queries} queries"],
        ["time to queue (send → all appended)", f"{queue_s:.1f} s{late}"],
        [f"{sent:,} deliveries (send → queue empty)", f"{drain_s:.1f} s, {sent / drain_s:,.0f}/s"],
    ]
    rows.append(["SMS per second", f"{sms / drain_s:,.1f}"])
    rows.append(["fakes received (SMS, emails)", f"{sms:,}, {emails:,}"])
    print(harness.table(rows))
    once = sms == emails == args.customers and sent == 2 * args.customers
    print("every recipient got it once on each channel" if once else "FAIL: see the counts above")
    return 0 if once else 1


if __name__ == "__main__":
    raise SystemExit(main())
