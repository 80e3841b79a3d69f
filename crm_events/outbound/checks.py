"""System checks: CRM_OUTBOUND_URL and CRM_OUTBOUND_SECRET wrong fail loudly at start (every
management command, the web and the worker), not quietly at the first event."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError

from crm_events.outbound import endpoints


def check_outbound_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    if settings.CRM_OUTBOUND_URL:
        try:
            endpoints.check_environment_url(settings.CRM_OUTBOUND_URL)
        except ValidationError as error:
            found.append(checks.Error(error.messages[0], id="crm_events.E001"))
        if not settings.CRM_OUTBOUND_SECRET:
            found.append(
                checks.Warning(
                    "CRM_OUTBOUND_URL is set without CRM_OUTBOUND_SECRET: no events are sent.",
                    hint="Set CRM_OUTBOUND_SECRET to the whsec_… secret your CRM verifies with.",
                    id="crm_events.W001",
                )
            )
    for secret in settings.CRM_OUTBOUND_SECRET:
        try:
            endpoints.check_secret(secret)
        except ValidationError as error:
            found.append(
                checks.Error(f"CRM_OUTBOUND_SECRET: {error.messages[0]}", id="crm_events.E002")
            )
    if len(settings.CRM_OUTBOUND_SECRET) > 2:
        found.append(
            checks.Error(
                "CRM_OUTBOUND_SECRET holds more than two secrets (the current and, while "
                "rotating, the next).",
                id="crm_events.E003",
            )
        )
    return found
