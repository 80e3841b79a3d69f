"""System checks for the notification settings: run when the server starts (`migrate`, which
the deployment runs first, and `runserver`) and by `manage.py check`. Production here means
what the settings call it: DEBUG off and an https SITE_URL."""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


def _production() -> bool:
    return not settings.DEBUG and settings.SITE_URL.startswith("https://")


def _local_host(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _subject_host(subject: str) -> str:
    if subject.lower().startswith("mailto:"):
        return parseaddr(subject[len("mailto:") :])[1].rpartition("@")[2]
    return urlsplit(subject).hostname or ""


@register()
def vapid_subject_is_reachable(app_configs, **kwargs) -> list:
    """Apple's push service refuses VAPID claims whose subject is on localhost (BadJwtToken),
    so every push to an iPhone would fail: refuse to start instead."""
    if not (_production() and settings.VAPID_PUBLIC_KEY and settings.VAPID_PRIVATE_KEY):
        return []
    subject = settings.VAPID_SUBJECT
    host = _subject_host(subject)
    if host and not _local_host(host):
        return []
    return [
        Error(
            f"VAPID_SUBJECT is {subject!r}: push services (Apple's among them) refuse a "
            "subject on localhost or with no domain.",
            hint="Set VAPID_SUBJECT to mailto: an address people can write to, or to the "
            "site's https URL (by default it is DEFAULT_FROM_EMAIL's address).",
            id="notifications.E001",
        )
    ]


@register()
def email_reply_domain_is_set(app_configs, **kwargs) -> list:
    """Replies by email reach the thread only if the reply domain's mail goes to the ESP."""
    if not _production() or settings.EMAIL_REPLY_DOMAIN:
        return []
    return [
        Warning(
            "EMAIL_REPLY_DOMAIN is not set: reply addresses use DEFAULT_FROM_EMAIL's domain, "
            "whose mail usually does not go to the email provider's inbound webhook, so "
            "email replies would never reach a thread.",
            hint="Set EMAIL_REPLY_DOMAIN to a domain whose MX points at the ESP's inbound "
            "servers (docs/notifications.md, 'Email that comes in').",
            id="notifications.W001",
        )
    ]
