from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the tasks in every process, not only in workers: the outbox queues them by
        # name (app.tasks[...]), which must find them in a web process too.
        # anymail reports the ESP's tracking webhooks through its `tracking` signal: the
        # extension point it offers other apps. The receiver only calls an action.
        from anymail.signals import tracking

        import notifications.tasks  # noqa: F401
        from notifications.receivers import email_tracking_event

        tracking.connect(email_tracking_event, dispatch_uid="notifications.email_tracking")
