"""Deliveries benchmark: how fast does a real Celery worker drain the notification outbox to
the providers, and how much of its time is ours rather than the provider call's?

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight_bench_deliveries \\
        REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python -m bench.deliveries

Starts the fake Twilio, Postmark and push service of tests/fakes on 127.0.0.1 (in this
process), migrates and empties the bench database, and makes 1,000 customers, each with a
phone, an email address and one push subscription, quiet hours off. It then appends 1,000
staff messages (one per customer, through messaging.actions, each in its own transaction),
with the email delay at 0, so each message makes three deliveries due now: SMS, email and
push — 3,000 tasks waiting in Redis. Only then does it start `celery -A portal worker`
(prefork, --concurrency = the machine's cores unless told) and time the drain: from the
worker's "ready" to the last delivery leaving "queued"/"sending".

Prints:
- appends per second (the append transaction with its delivery planning and task queueing);
- deliveries per second through the worker;
- the share of time outside the provider call, twice: within the task (the worker logs, for
  each delivery, the milliseconds of its provider call and of the whole task), and over the
  worker's capacity (wall time x processes), which also counts Celery's own overhead (fetch,
  acknowledge, logging) and any idle time.
And checks that every fake received what it should: 1,000 SMS, 1,000 emails, 1,000 pushes
that decrypt, no refused VAPID signature.

Needs PostgreSQL (the worker is another process) whose database name contains "bench"
(it is emptied), and Redis: REDIS_URL names a database whose Celery queue is emptied first.
Exit status 0 when every delivery was sent, 1 otherwise, 2 when refusing to run.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(
    r"delivery \d+ (?P<channel>\w+) to \w+: (?P<status>\w+) "
    r"\(provider (?P<provider>[\d.]+) ms of (?P<total>[\d.]+) ms\)"
)


def _refuse(message: str) -> int:
    print(f"bench.deliveries: {message}", file=sys.stderr)
    return 2


def _vapid_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64(public), b64(key.private_numbers().private_value.to_bytes(32, "big"))


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


class Worker:
    def __init__(self, env: dict[str, str], concurrency: int):
        self.env = env
        self.concurrency = concurrency
        self.lines: list[str] = []
        self.ready_at: float | None = None
        self._ready = threading.Event()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname=bench-deliveries@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60):
            self.stop()
            raise RuntimeError("worker did not start:\n" + "".join(self.lines[-30:]))

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line and not self._ready.is_set():
                self.ready_at = time.perf_counter()
                self._ready.set()

    def cpu_seconds(self) -> float:
        """User + system CPU used so far by the worker's processes (its process group), from
        /proc: what the drain cost, whatever else the machine was doing."""
        assert self.process is not None
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command: state, ppid, pgrp, ... utime is field 14, stime 15 (1-based).
            if int(fields[2]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the drain")
    args = parser.parse_args(argv)

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres") or "bench" not in database_url.rsplit("/", 1)[-1]:
        return _refuse("set DATABASE_URL to a PostgreSQL database whose name contains 'bench'")
    if not os.environ.get("REDIS_URL"):
        return _refuse("set REDIS_URL (a real worker needs a real broker)")

    sys.path.insert(0, str(ROOT))
    from tests.fakes.postmark import FakePostmark
    from tests.fakes.push import FakePushService
    from tests.fakes.twilio import FakeTwilio

    vapid_public, vapid_private = _vapid_pair()
    twilio = FakeTwilio().start()
    postmark = FakePostmark().start()
    push = FakePushService(vapid_public_key=vapid_public).start()
    anymail = postmark.settings()["ANYMAIL"]
    provider_env = {
        **{k: str(v) for k, v in twilio.settings().items()},
        "EMAIL_BACKEND": postmark.settings()["EMAIL_BACKEND"],
        "ANYMAIL_POSTMARK_SERVER_TOKEN": anymail["POSTMARK_SERVER_TOKEN"],
        "ANYMAIL_POSTMARK_API_URL": anymail["POSTMARK_API_URL"],
        "VAPID_PUBLIC_KEY": vapid_public,
        "VAPID_PRIVATE_KEY": vapid_private,
        "EMAIL_NOTIFICATION_DELAY_SECONDS": "0",
        "LOG_LEVEL": "WARNING",  # this process; the worker logs at INFO below
    }
    os.environ.update(provider_env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    worker = Worker(
        {**os.environ, **provider_env, "LOG_LEVEL": "INFO"}, concurrency=args.concurrency
    )
    try:
        return _run(args, twilio, postmark, push, worker)
    finally:
        worker.stop()
        for fake in (twilio, postmark, push):
            fake.stop()


def _run(args, twilio, postmark, push, worker) -> int:
    import warnings

    import django

    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from messaging import actions
    from notifications.models import Delivery, NotificationPreferences, PushSubscription
    from portal.models import Business, Customer

    n = args.messages
    print("Deliveries benchmark: a real Celery worker draining the outbox to fake providers")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"Load average (1, 5, 15 min) at the start: {_loadavg()}")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    redis.Redis.from_url(settings.REDIS_URL).delete("celery", "unacked", "unacked_index")

    User = get_user_model()
    business = Business.objects.create(
        name="Mike's Contracting",
        initials="MC",
        email="office@mikes.example",
        sms_number="+15555550100",
    )
    staff = User.objects.create(username="mike", is_staff=True)
    users = User.objects.bulk_create(
        [User(username=f"customer{i}", email=f"customer{i}@example.com") for i in range(n)]
    )
    customers = Customer.objects.bulk_create(
        [
            Customer(
                business=business,
                user=user,
                name=f"Customer {i}",
                email=user.email,
                phone=f"+1555{5550000 + i:07d}",
            )
            for i, user in enumerate(users)
        ]
    )
    NotificationPreferences.objects.bulk_create(
        [
            NotificationPreferences(customer=c, time_zone=c.time_zone, quiet_hours_enabled=False)
            for c in customers
        ]
    )
    subscriptions = []
    for customer in customers:
        info = push.new_subscription()
        subscriptions.append(
            PushSubscription(
                customer=customer,
                endpoint=info["endpoint"],
                p256dh=info["keys"]["p256dh"],
                auth=info["keys"]["auth"],
            )
        )
    PushSubscription.objects.bulk_create(subscriptions)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by then

    started = time.perf_counter()
    for i, customer in enumerate(customers):
        thread = actions.ensure_thread(customer=customer)
        actions.post_staff_message(
            thread=thread, author=staff, body=f"Message {i}: the deck stain is dry."
        )
    appending = time.perf_counter() - started
    expected = Delivery.objects.count()
    print(
        f"\n{n:,} messages appended in {appending:.1f} s: {n / appending:,.0f} appends/s "
        f"(each: append, plan {expected // n} deliveries, queue their tasks to Redis)"
    )

    worker.start()
    cpu_at_ready = worker.cpu_seconds()
    pending = [Delivery.Status.QUEUED, Delivery.Status.HELD, Delivery.Status.SENDING]
    deadline = time.perf_counter() + args.timeout
    while Delivery.objects.filter(status__in=pending).exists():
        if time.perf_counter() > deadline:
            print("timed out waiting for the worker", file=sys.stderr)
            break
        time.sleep(0.1)
    drained_at = time.perf_counter()
    cpu = worker.cpu_seconds() - cpu_at_ready
    assert worker.ready_at is not None
    wall = drained_at - worker.ready_at
    time.sleep(0.5)  # let the last log lines arrive
    worker.stop()

    timings = [m.groupdict() for m in map(LOG_LINE.search, worker.lines) if m]
    provider = sum(float(t["provider"]) for t in timings) / 1000
    total = sum(float(t["total"]) for t in timings) / 1000
    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    by_channel = {
        channel: Delivery.objects.filter(channel=channel, status="sent").count()
        for channel in ("sms", "email", "push")
    }

    print(f"Worker: prefork, concurrency {worker.concurrency}")
    print(
        f"{sent:,} of {expected:,} deliveries sent in {wall:.2f} s: "
        f"{sent / wall:,.0f} deliveries/s  (sms {by_channel['sms']}, email "
        f"{by_channel['email']}, push {by_channel['push']})"
    )
    if timings and total:
        print(
            f"Per delivery (median of {len(timings):,}): "
            f"{_median([float(t['total']) for t in timings]):.1f} ms in the task, "
            f"{_median([float(t['provider']) for t in timings]):.1f} ms of it in the provider call"
        )
        print(f"Share of task time outside the provider call: {1 - provider / total:.0%}")
        capacity = wall * worker.concurrency
        print(
            f"Share of worker capacity outside the provider call (adds Celery's own work "
            f"and idle): {1 - provider / capacity:.0%}"
        )
    print(
        f"Worker CPU (all its processes): {cpu:.1f} s, {cpu / max(sent, 1) * 1000:.1f} ms per "
        f"delivery; the worker was on a CPU {cpu / (wall * worker.concurrency):.0%} of its "
        "capacity (the rest: waiting on the network, the database, or a busy machine)"
    )
    print(
        f"Fakes received: {len(twilio.messages):,} SMS, {len(postmark.emails):,} emails, "
        f"{len(push.pushes):,} pushes (decrypted), {len(push.rejections)} refused"
    )
    print(f"Load average at the end: {_loadavg()}")
    ok = (
        sent == expected == 3 * n
        and len(twilio.messages) == len(postmark.emails) == len(push.pushes) == n
        and not push.rejections
    )
    print("PASS: every delivery sent once" if ok else "FAIL: see the counts above")
    return 0 if ok else 1


def _median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


if __name__ == "__main__":
    sys.exit(main())
