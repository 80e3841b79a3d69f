from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class CrmEventsConfig(AppConfig):
    name = "crm_events"
    verbose_name = "CRM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Its tasks too, registered in every process (the periodic command runs them by name).
        from crm_events import automations, tasks  # noqa: F401
        from crm_events.outbound import events
        from crm_events.outbound.checks import check_outbound_settings
        from messaging import extensions, keywords

        # CONFIRM, by SMS or a portal reply, confirms the next appointment.
        keywords.register("CONFIRM", automations.confirm_by_keyword)
        # The CRM hears of every customer message and of how far the customer has read, in
        # the transaction of the append or the read mark (crm_events/outbound/events.py).
        extensions.subscribe_to_appends(events.message_received)
        extensions.subscribe_to_reads(events.conversation_read)
        # Transcripts name the document each card is about, with its number and total.
        from crm_events.transcripts import card_documents

        extensions.add_transcript_part(
            extensions.TranscriptPart(key="document", load=card_documents)
        )
        checks.register(check_outbound_settings)
