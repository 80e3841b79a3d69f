"""Deliveries: a real Celery worker draining the outbox to the fake providers.

    SECRET_KEY=x .venv/bin/python -m bench.deliveries [--messages 1000] [--latency 200]
        [--pool threads] [--concurrency 64]      # defaults: docker-compose.yml's worker

N customers each get one staff message (SMS, email and push: 3 deliveries each), appended
with the worker stopped; then `celery -A portal worker` (tests.servers.CeleryWorker) drains
them. Reported, all from outside the product: deliveries per second (from the worker being
ready to the last row leaving the queue); where the tasks' wall time goes, from py-spy
sampling the worker's processes (idle time included: a task waiting on a provider is
waiting in the provider call): the share inside a transport's send() against the whole task;
the providers' own service time (the fakes' clocks: request in, reply out) and its share of
the tasks' own time (Celery's "succeeded in"); and that every delivery reached its fake once.
The fakes answer after --latency ms (a real provider's service time is about 200 ms).
"""

from __future__ import annotations

import argparse
import base64
import re
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import harness
from tests.servers import WORKER_CONCURRENCY, WORKER_POOL

SUCCEEDED = re.compile(r"Task notifications\.deliver\[[^\]]+\] succeeded in ([\d.]+)s")
TASK_FRAME = "deliver (notifications/tasks.py"
PROVIDER_FRAME = re.compile(r"send \(notifications/outbound/transports\.py")


def _shares(raw: Path) -> tuple[int, int]:
    """(samples inside a deliver task, of them inside a transport's send) from py-spy's
    collapsed stacks ("frame;frame;... count" per line)."""
    counts: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if TASK_FRAME in stack:
            counts["task"] += int(count)
            if PROVIDER_FRAME.search(stack):
                counts["provider"] += int(count)
    return counts["task"], counts["provider"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--pool", default=WORKER_POOL, choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY)
    parser.add_argument("--latency", type=float, default=1, help="ms each fake waits to answer")
    parser.add_argument("--no-profile", action="store_true", help="without py-spy")
    parser.add_argument(
        "--gil", action="store_true", help="py-spy samples CPU (--gil), not wall time (--idle)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the drain")
    parser.add_argument(
        "--worker-env", action="append", default=[], help="KEY=VALUE in the worker's environment"
    )
    parser.add_argument(
        "--worker-arg", action="append", default=[], help="more of the worker's command line"
    )
    parser.add_argument("--log", type=Path, help="write the worker's log here")
    args = parser.parse_args(argv)

    from tests.fakes.postmark import FakePostmark
    from tests.fakes.push import FakePushService
    from tests.fakes.twilio import FakeTwilio

    public, private = _vapid_pair()
    latency = args.latency / 1000
    twilio = FakeTwilio(latency=latency).start()
    postmark = FakePostmark(latency=latency).start()
    push = FakePushService(vapid_public_key=public, latency=latency).start()
    anymail = postmark.settings()["ANYMAIL"]
    provider_env = {
        **{k: str(v) for k, v in twilio.settings().items()},
        "EMAIL_BACKEND": postmark.settings()["EMAIL_BACKEND"],
        "ANYMAIL_POSTMARK_SERVER_TOKEN": anymail["POSTMARK_SERVER_TOKEN"],
        "ANYMAIL_POSTMARK_API_URL": anymail["POSTMARK_API_URL"],
        "VAPID_PUBLIC_KEY": public,
        "VAPID_PRIVATE_KEY": private,
        "WEB_PUSH_ENDPOINT_HOSTS": "127.0.0.1",
        "EMAIL_NOTIFICATION_DELAY_SECONDS": "0",
    }
    import os

    os.environ.update(provider_env)
    database_url, redis_url = harness.setup_django()
    from tests.servers import CeleryWorker

    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "INFO"}
    env.update(item.split("=", 1) for item in args.worker_env)
    worker = CeleryWorker(
        env=env,
        concurrency=args.concurrency,
        pool=args.pool,
        name="bench-deliveries",
        args=tuple(args.worker_arg),
    )
    try:
        return _run(args, worker, twilio, postmark, push, redis_url)
    finally:
        worker.stop()
        for fake in (twilio, postmark, push):
            fake.stop()


def _run(args, worker, twilio, postmark, push, redis_url) -> int:
    from messaging import actions
    from notifications.models import Delivery, NotificationPreferences, PushSubscription

    print(
        f"bench.deliveries · {harness.machine()} · --pool {args.pool} --concurrency "
        f"{args.concurrency} · providers answer in {args.latency:g} ms"
    )
    harness.reset(redis_url)
    world = harness.build_world(customers=args.messages)
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(customer=c, time_zone=c.time_zone, quiet_hours_enabled=False)
        for c in world.customers
    )
    PushSubscription.objects.bulk_create(
        PushSubscription(
            customer=c,
            endpoint=(info := push.new_subscription())["endpoint"],
            p256dh=info["keys"]["p256dh"],
            auth=info["keys"]["auth"],
        )
        for c in world.customers
    )
    harness.analyze()
    for i, customer in enumerate(world.customers):
        thread = actions.ensure_thread(customer=customer)
        actions.post_staff_message(thread=thread, author=world.staff, body=f"Message {i}.")
    expected = Delivery.objects.count()

    worker.start()
    raw = Path(tempfile.mkdtemp()) / "py-spy.txt"
    profiler = None
    if not args.no_profile:
        mode = "--gil" if args.gil else "--idle"
        profiler = harness.py_spy(worker.process.pid, raw, rate=200, mode=mode)
    cpu_at_ready = worker.cpu_seconds()
    pending = [Delivery.Status.QUEUED, Delivery.Status.HELD, Delivery.Status.SENDING]
    deadline = time.perf_counter() + args.timeout
    while Delivery.objects.filter(status__in=pending).exists():
        if time.perf_counter() > deadline:
            print("timed out waiting for the worker")
            break
        time.sleep(0.05)
    wall = time.perf_counter() - worker.ready_at
    cpu = worker.cpu_seconds() - cpu_at_ready
    time.sleep(0.5)  # the last log lines
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)
    worker.stop()
    if args.log:
        args.log.write_text("".join(worker.output))

    task_s = sum(float(m.group(1)) for m in map(SUCCEEDED.search, worker.output) if m)
    requests = twilio.requests + postmark.requests + push.requests
    provider_s = sum(r.answered_at - r.at for r in requests if r.answered_at)
    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    rows = [["measure", "figure"]]
    rows.append([f"{sent:,} of {expected:,} deliveries sent", f"{sent / wall:,.0f} per second"])
    rows.append(["task time (Celery's own log), all tasks", f"{task_s:.1f} s"])
    if profiler is not None and raw.exists():
        in_task, in_send = _shares(raw)
        if in_task:
            rows.append(
                [
                    "share of task time outside the provider call (py-spy)",
                    f"{1 - in_send / in_task:.0%} ({in_task:,} samples in tasks)",
                ]
            )
    rows.append(["providers' own service time (the fakes' clocks)", f"{provider_s:.1f} s"])
    if task_s:
        # Each delivery is one request to one fake here (one SMS, one email, one device).
        rows.append(
            [
                "share of task time outside the provider (fakes' clocks / task time)",
                f"{1 - provider_s / task_s:.0%} ({task_s / max(sent, 1) * 1000:.0f} ms a task)",
            ]
        )
    rows.append(["worker CPU per delivery", f"{cpu / max(sent, 1) * 1000:.1f} ms"])
    rows.append(
        [
            "fakes received (SMS, emails, pushes)",
            f"{len(twilio.messages):,}, {len(postmark.emails):,}, {len(push.pushes):,}",
        ]
    )
    print(harness.table(rows))
    if profiler is not None:
        print(f"py-spy's stacks: {raw} (python -m bench.profile_top {raw})")
    once = len(twilio.messages) == len(postmark.emails) == len(push.pushes) == args.messages
    ok = sent == expected == 3 * args.messages and once and not push.rejections
    print("every delivery sent once" if ok else "FAIL: see the counts above")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
