"""Run the CRM automations once (or every CRM_AUTOMATIONS_SECONDS with --loop), for machines
without Celery beat (`make run` has no Redis)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from crm_events.automations import run_automations


class Command(BaseCommand):
    help = "Send due appointment reminders and project follow-ups."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep running.")

    def handle(self, *args, loop: bool = False, **options) -> None:
        while True:
            result = run_automations()
            self.stdout.write(
                f"reminders sent: {result['reminders']}, follow-ups sent: {result['follow_ups']}"
            )
            if not loop:
                return
            time.sleep(settings.CRM_AUTOMATIONS_SECONDS)
