from __future__ import annotations

import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.outbound import outbox
from portal.celery import app


class Command(BaseCommand):
    help = (
        "Run the notifications sweeper: release held deliveries whose time has come, re-drive "
        "stuck ones. Without Redis (Celery eager, as under `make run`) the sweeper sends them "
        "itself, so this is the worker; with Redis, run `celery -A portal worker --beat`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep running, sweeping every NOTIFICATIONS_SWEEP_SECONDS (default: sweep "
            "once and exit).",
        )
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running, sweeping every SECONDS.",
        )

    def handle(self, *args, loop: bool, every: float | None, **options) -> None:
        if every is not None and every <= 0:
            raise CommandError("--every takes a number of seconds above 0.")
        if loop and every is None:
            every = float(settings.NOTIFICATIONS_SWEEP_SECONDS)
        mode = "sending inline (no Redis)" if app.conf.task_always_eager else "queueing to Redis"
        self.stdout.write(f"Notifications sweeper, {mode}.")
        # Stopping mid-sweep is safe: each row moves by one UPDATE, and a task lost on the
        # way is queued again by the next sweep.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                result = outbox.sweep_deliveries()
                if result.released or result.redriven or result.requeued:
                    self.stdout.write(
                        f"released {result.released}, re-driven {result.redriven}, "
                        f"re-queued {result.requeued}"
                    )
                if not every:
                    return
                time.sleep(every)
        except KeyboardInterrupt:
            return
