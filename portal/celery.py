"""The Celery app. Without REDIS_URL tasks run eagerly (settings), so nothing else is needed."""

from __future__ import annotations

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("porchlight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _warm_up_providers(**kwargs) -> None:
    from notifications.outbound import transports

    transports.warm_up()


def run_task(name: str, *args, countdown: float | None = None) -> None:
    """Queue the registered task `name` (run inline when tasks are eager). By name, so that
    actions never import the tasks modules that import them; each app registers its tasks
    in its AppConfig.ready()."""
    app.tasks[name].apply_async(args=list(args), countdown=countdown)
