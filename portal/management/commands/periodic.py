"""Run Celery beat's schedule in this process, for machines without Redis (`make worker`
under `make run`): every entry of CELERY_BEAT_SCHEDULE runs here on its period, inline.

With Redis, `celery -A portal worker --beat` does this instead; both read the same schedule,
so a task added to it runs in both."""

from __future__ import annotations

import logging
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.celery import app

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run every periodic task (the notifications sweeper, the CRM automations) on its "
        "schedule, in this process: the worker for machines without Redis."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Run each periodic task once, then exit."
        )

    def handle(self, *args, once: bool, **options) -> None:
        schedule = {
            name: (entry["task"], float(entry["schedule"]))
            for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        }
        names = ", ".join(f"{name} every {period:g}s" for name, (_, period) in schedule.items())
        self.stdout.write(f"Running periodic tasks inline: {names}.")
        # Stopping between tasks or inside one is safe: each is idempotent and the next run
        # picks up whatever the stopped one left.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        due = dict.fromkeys(schedule, 0.0)
        try:
            while True:
                now = time.monotonic()
                for name, (task, period) in schedule.items():
                    if due[name] > now:
                        continue
                    self._run(name, task)
                    due[name] = time.monotonic() + period
                if once:
                    return
                time.sleep(max(0.05, min(due.values()) - time.monotonic()))
        except KeyboardInterrupt:
            return

    def _run(self, name: str, task: str) -> None:
        # apply() runs the task here whatever the broker settings say.
        result = app.tasks[task].apply()
        if result.failed():
            # A failing run is logged and tried again next period; it never stops the loop.
            logger.error("periodic task %s failed: %s", name, result.result)
            return
        done = result.result
        if isinstance(done, dict) and any(done.values()):  # quiet when there was nothing to do
            self.stdout.write(f"{name}: " + ", ".join(f"{k} {v}" for k, v in done.items() if v))
