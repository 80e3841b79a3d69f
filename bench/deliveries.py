"""Deliveries: a real Celery worker draining the outbox to the fake providers.

    SECRET_KEY=x .venv/bin/python -m bench.deliveries [--messages 1000] [--latency 1,200]
        [--pool threads] [--concurrency 64]      # defaults: docker-compose.yml's worker

For each latency (the fakes answer after it; a real provider's service time is about 200 ms):

- the floor: the same worker command line draining as many Celery tasks that only POST to a
  fake provider (bench.delivery_floor, loaded with --include for that run only): what the
  broker, the thread pool and the HTTP client cost with nothing of ours;
- the deliveries: N customers each get one staff message (SMS, email and push: 3 deliveries
  each), appended with the worker stopped; then production's worker command line
  (tests.servers.CeleryWorker) drains them.

Each row, all measured from outside the product: deliveries (tasks) per second, from the
worker being ready to the last row leaving the queue; the share of the tasks' time outside
the provider call, from the fakes' clocks (1 − the providers' own service time, request in to
reply out, / the sum of Celery's "succeeded in" of the deliver and deliver_many tasks), and
from py-spy sampling the worker (the share of those tasks' samples outside a transport's
send(), which counts the HTTP client as the provider); the worker's CPU per delivery
(/proc); the load average when the drain ended. It also checks that every delivery reached
its fake once.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import harness
from tests.servers import WORKER_CONCURRENCY, WORKER_POOL

SUCCEEDED = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([\d.]+)s")
# A send's deliveries come in one deliver_many task, which sends one of them itself and
# queues the others as deliver tasks: the time of both kinds is deliveries' time.
DELIVERY_TASKS = ("notifications.deliver", "notifications.deliver_many")
TASK_FRAME = re.compile(r"(^|;)deliver(_many)? \(notifications/tasks\.py")
PROVIDER_FRAME = re.compile(r"send \(notifications/outbound/transports\.py")


def _shares(raw: Path) -> tuple[int, int]:
    """(samples inside a deliver task, of them inside a transport's send) from py-spy's
    collapsed stacks ("frame;frame;... count" per line)."""
    counts: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if TASK_FRAME.search(stack):
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
    parser.add_argument(
        "--latency", default="1,200", help="ms each fake waits to answer; several: 1,200"
    )
    parser.add_argument("--no-floor", action="store_true", help="without the floor's runs")
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
    parser.add_argument("--log", type=Path, help="write the workers' logs here")
    args = parser.parse_args(argv)
    latencies = [float(ms) for ms in args.latency.split(",")]

    from bench.delivery_floor import FloorProvider
    from tests.fakes.postmark import FakePostmark
    from tests.fakes.push import FakePushService
    from tests.fakes.twilio import FakeTwilio

    public, private = _vapid_pair()
    twilio = FakeTwilio().start()
    postmark = FakePostmark().start()
    push = FakePushService(vapid_public_key=public).start()
    floor = FloorProvider().start()
    fakes = (twilio, postmark, push, floor)
    anymail = postmark.settings()["ANYMAIL"]
    os.environ.update(
        {
            **{k: str(v) for k, v in twilio.settings().items()},
            "EMAIL_BACKEND": postmark.settings()["EMAIL_BACKEND"],
            "ANYMAIL_POSTMARK_SERVER_TOKEN": anymail["POSTMARK_SERVER_TOKEN"],
            "ANYMAIL_POSTMARK_API_URL": anymail["POSTMARK_API_URL"],
            "VAPID_PUBLIC_KEY": public,
            "VAPID_PRIVATE_KEY": private,
            "WEB_PUSH_ENDPOINT_HOSTS": "127.0.0.1",
            "EMAIL_NOTIFICATION_DELAY_SECONDS": "0",
        }
    )
    database_url, redis_url = harness.setup_django()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "INFO"}
    env.update(item.split("=", 1) for item in args.worker_env)
    print(
        f"bench.deliveries · {harness.machine()} · --pool {args.pool} --concurrency "
        f"{args.concurrency} · {args.messages:,} messages (3 deliveries each) per latency"
    )
    rows = [
        ["providers answer in", "run", "per second", "outside the provider (fakes' clocks)",
         "(py-spy)", "worker CPU each", "load (1 min)"],
    ]  # fmt: skip
    ok = True
    try:
        for ms in latencies:
            for fake in fakes:
                fake.latency = ms / 1000
            if not args.no_floor:
                rows.append([f"{ms:g} ms", *_floor(args, env, floor, redis_url)])
            figures, run_ok = _run(args, env, twilio, postmark, push, redis_url)
            rows.append([f"{ms:g} ms", *figures])
            ok = ok and run_ok
    finally:
        for fake in fakes:
            fake.stop()
    print(harness.table(rows))
    print("every delivery sent once" if ok else "FAIL: see the counts above")
    return 0 if ok else 1


def _worker(args, env, *, extra: tuple[str, ...] = ()):
    from tests.servers import CeleryWorker

    return CeleryWorker(
        env=env,
        concurrency=args.concurrency,
        pool=args.pool,
        name="bench-deliveries",
        args=(*args.worker_arg, *extra),
    )


def _task_seconds(worker, *tasks: str) -> list[float]:
    matches = (SUCCEEDED.search(line) for line in worker.output)
    return [float(m.group(2)) for m in matches if m and m.group(1) in tasks]


def _save_log(args, worker, label: str) -> None:
    if args.log:
        with args.log.open("a") as log:
            log.write(f"==== {label}\n")
            log.writelines(worker.output)


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _floor(args, env, floor, redis_url) -> list[str]:
    """The same worker command line draining as many tasks that only call a fake provider
    (bench.delivery_floor): the rate, the share and the CPU nothing of ours costs."""
    from bench.delivery_floor import FLOOR_TASK
    from portal.celery import app

    harness.reset(redis_url)
    n = 3 * args.messages
    url = f"{floor.url}/floor"
    for i in range(n):
        app.send_task(FLOOR_TASK, args=[url, i])
    floor.reset()
    worker = _worker(args, env, extra=("--include", "bench.delivery_floor"))
    worker.start()
    try:
        cpu_at_ready = worker.cpu_seconds()
        deadline = time.perf_counter() + args.timeout
        while len(_task_seconds(worker, FLOOR_TASK)) < n and time.perf_counter() < deadline:
            time.sleep(0.05)
        wall = time.perf_counter() - worker.ready_at
        cpu = worker.cpu_seconds() - cpu_at_ready
        load = _load()
    finally:
        worker.stop()
    _save_log(args, worker, f"floor at {floor.latency * 1000:g} ms")
    tasks = _task_seconds(worker, FLOOR_TASK)
    provider_s = sum(r.answered_at - r.at for r in floor.requests if r.answered_at)
    task_s = sum(tasks)
    return [
        f"floor: {len(tasks):,} tasks that only call the fake",
        f"{len(tasks) / wall:,.0f}",
        f"{1 - provider_s / task_s:.0%} ({task_s / len(tasks) * 1000:.0f} ms a task)"
        if tasks
        else "-",
        "",
        f"{cpu / max(len(tasks), 1) * 1000:.1f} ms",
        load,
    ]


def _run(args, env, twilio, postmark, push, redis_url) -> tuple[list[str], bool]:
    from messaging import actions
    from notifications.models import Delivery, NotificationPreferences, PushSubscription

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
    counts_before = (len(twilio.messages), len(postmark.emails), len(push.pushes))
    for fake in (twilio, postmark, push):
        fake.requests.clear()

    worker = _worker(args, env).start()
    raw = Path(tempfile.mkdtemp()) / "py-spy.txt"
    profiler = None
    if not args.no_profile:
        mode = "--gil" if args.gil else "--idle"
        profiler = harness.py_spy(worker.process.pid, raw, rate=200, mode=mode)
    try:
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
        load = _load()
        time.sleep(0.5)  # the last log lines
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
    finally:
        worker.stop()
    _save_log(args, worker, f"deliveries at {twilio.latency * 1000:g} ms")

    task_s = sum(_task_seconds(worker, *DELIVERY_TASKS))
    requests = twilio.requests + postmark.requests + push.requests
    provider_s = sum(r.answered_at - r.at for r in requests if r.answered_at)
    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    spy = ""
    if profiler is not None and raw.exists():
        in_task, in_send = _shares(raw)
        if in_task:
            spy = f"{1 - in_send / in_task:.0%} ({raw})"
    # Each delivery is one request to one fake here (one SMS, one email, one device).
    outside = f"{1 - provider_s / task_s:.0%} ({task_s / max(sent, 1) * 1000:.0f} ms a task)"
    counts_after = (len(twilio.messages), len(postmark.emails), len(push.pushes))
    received = [after - before for before, after in zip(counts_before, counts_after, strict=True)]
    once = received == [args.messages] * 3
    ok = sent == expected == 3 * args.messages and once and not push.rejections
    if not ok:
        print(
            f"FAIL: {sent:,} of {expected:,} sent; fakes received (SMS, emails, pushes) {received}"
        )
    return [
        f"deliveries: {sent:,} of {expected:,} sent",
        f"{sent / wall:,.0f}",
        outside if task_s else "-",
        spy,
        f"{cpu / max(sent, 1) * 1000:.1f} ms",
        load,
    ], ok


if __name__ == "__main__":
    raise SystemExit(main())
