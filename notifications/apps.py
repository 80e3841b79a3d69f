from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # anymail reports the ESP's webhooks through its `tracking` and `inbound` signals:
        # the extension points it offers other apps. Each receiver only calls an action.
        # The tasks are imported in every process, not only in workers: the outbox queues
        # them by name (app.tasks[...]), which must find them in a web process too.
        from anymail.signals import inbound, tracking

        import notifications.tasks  # noqa: F401
        from messaging import extensions, keywords
        from messaging.models import Entry
        from notifications import queries
        from notifications.inbound import actions as intake
        from notifications.inbound.receivers import email_inbound_event, email_tracking_event
        from notifications.outbound.planning import plan_deliveries

        # messaging imports no app above it: notifications subscribe to its appends (the
        # Delivery rows, written inside the append's transaction) and add the delivery lines
        # under each entry of staff timelines.
        extensions.subscribe_to_appends(plan_deliveries)
        extensions.add_staff_badge(
            extensions.StaffBadge(
                template="notifications/_delivery_status.html",
                prefetch=queries.deliveries_prefetch,
                state=queries.delivery_state,
            )
        )

        # Transcripts list each entry's notifications with their receipts.
        from notifications.transcripts import entry_receipts

        extensions.add_transcript_part(
            extensions.TranscriptPart(key="receipts", load=entry_receipts)
        )

        tracking.connect(email_tracking_event, dispatch_uid="notifications.email_tracking")
        inbound.connect(email_inbound_event, dispatch_uid="notifications.email_inbound")

        # The carrier's keywords mean something only in a text (Twilio acts on them too).
        for words, handler in [
            (intake.OPT_OUT_WORDS, intake.stop_texts),
            (intake.OPT_IN_WORDS, intake.resume_texts),
            (intake.HELP_WORDS, intake.record_help),
        ]:
            for word in words:
                keywords.register(word, handler, channels=[Entry.Channel.SMS])

        # The settings checks register themselves on import (notifications/checks.py).
        import notifications.checks  # noqa: F401
