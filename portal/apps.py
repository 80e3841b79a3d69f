from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered in every process: actions queue tasks by name (portal.celery.run_task).
        import portal.tasks  # noqa: F401
