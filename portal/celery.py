"""The Celery app. Without REDIS_URL tasks run eagerly (settings), so nothing else is needed."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("porchlight")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
