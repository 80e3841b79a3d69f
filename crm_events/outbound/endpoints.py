"""Every write of a webhook endpoint, which endpoints hear each event type, and where and with
which secrets an attempt to one goes.

Endpoints entered in the admin must be public https hosts: checked when saved (the URL as the
HTTP client parses it, and the addresses its name resolves to now) and again at every connect
(`notifications.safe_http.public_session`: the peer's address is checked before a byte is
sent, so a name rebound to 10.0.0.5 after it was saved gets nothing). The endpoint given by
CRM_OUTBOUND_URL is the operator's own choice: https anywhere, or http on loopback.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass

import requests
import urllib3
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_events.outbound.models import WebhookDelivery, WebhookEndpoint
from notifications.safe_http import allowed_url, is_public, public_session

logger = logging.getLogger(__name__)

# Which endpoints hear which types, cached so that an append (every customer message) costs no
# query when none is configured. Every write below drops it on commit; the timeout bounds how
# long another process may keep an old copy when the cache is per process (no Redis).
_CACHE_KEY = "crm-outbound-endpoints:1"
_CACHE_SECONDS = 60


def _forget_on_commit() -> None:
    transaction.on_commit(lambda: _cached(lambda: cache.delete(_CACHE_KEY)), robust=True)


def _environment_configured() -> bool:
    if settings.CRM_OUTBOUND_URL and not settings.CRM_OUTBOUND_SECRET:
        logger.error("CRM_OUTBOUND_URL is set without CRM_OUTBOUND_SECRET: no events are sent")
    return bool(settings.CRM_OUTBOUND_URL and settings.CRM_OUTBOUND_SECRET)


def _cached(action):
    """The cache's answer, or None when it cannot be reached: with Redis down a customer's
    message must still be written (DESIGN, "Nothing lost"), so the table is read afresh."""
    try:
        return action()
    except Exception as error:  # the cache backend's own errors (redis-py's)
        logger.warning("endpoint table not cached: %s", type(error).__name__)
        return None


def _table() -> list[tuple[int, list[str]]]:
    table = _cached(lambda: cache.get(_CACHE_KEY))
    if table is None:
        rows = WebhookEndpoint.objects.values_list("pk", "event_types", "from_environment")
        table = [(pk, types) for pk, types, from_env in rows if not from_env]
        if _environment_configured():
            table.append((environment_endpoint().pk, []))
        _cached(lambda: cache.set(_CACHE_KEY, table, _CACHE_SECONDS))
    return table


def endpoints_hearing(event_type: str) -> list[int]:
    """The ids of the endpoints `event_type` goes to: enabled or not (a disabled endpoint's
    events wait for it)."""
    return [pk for pk, types in _table() if not types or event_type in types]


def environment_endpoint() -> WebhookEndpoint:
    """The row standing for CRM_OUTBOUND_URL (its deliveries, log and enabled state)."""
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        from_environment=True, defaults={"description": "From CRM_OUTBOUND_URL"}
    )
    return endpoint


# -- checks ------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def check_secret(secret: str) -> str:
    secret = secret.strip()
    try:
        if not secret.startswith("whsec_"):
            raise ValueError
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        raise ValidationError(
            "A secret is written whsec_ followed by base64, such as the one made for you.",
            code="bad_secret",
        ) from None
    if len(key) < 24:
        raise ValidationError("A secret needs at least 24 bytes of key.", code="short_secret")
    return secret


def check_public_url(url: str) -> str:
    """An admin-entered endpoint: https, no credentials in it, and a host that is not (and does
    not now resolve to) a private, loopback or link-local address."""
    url = url.strip()
    try:
        parts = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError:
        parts = None
    host = ((parts.host if parts else "") or "").strip("[]").lower()
    if parts is None or parts.scheme != "https" or not allowed_url(url, [host] if host else []):
        raise ValidationError(
            "The endpoint must be an https address with a host name and no user or password.",
            code="not_https",
        )
    try:
        addresses = [ipaddress.ip_address(host).compressed]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            found = []  # not resolvable now: the check at connect time still stands
        addresses = [info[4][0] for info in found]
    if any(not is_public(address) for address in addresses):
        raise ValidationError(
            "%(host)s is not on the public internet; events are sent only to public hosts.",
            code="private_address",
            params={"host": host},
        )
    return url


def check_environment_url(url: str) -> str:
    """CRM_OUTBOUND_URL: https, or http on a loopback host (development, tests)."""
    try:
        parts = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError:
        parts = None
    host = ((parts.host if parts else "") or "").strip("[]").lower()
    if parts is None or not host or parts.auth is not None:
        raise ValidationError("CRM_OUTBOUND_URL is not a URL.", code="bad_url")
    if parts.scheme == "https":
        return url
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return url
    raise ValidationError("CRM_OUTBOUND_URL must be https (or http on loopback).", code="bad_url")


# -- writes ------------------------------------------------------------------------------------


@transaction.atomic
def save_endpoint(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Create or change an admin endpoint (its URL, secrets, types), checked first."""
    if endpoint.from_environment:
        raise ValidationError("This endpoint is set by CRM_OUTBOUND_URL; change it there.")
    endpoint.url = check_public_url(endpoint.url)
    endpoint.secret = check_secret(endpoint.secret) if endpoint.secret.strip() else new_secret()
    if endpoint.previous_secret.strip():
        endpoint.previous_secret = check_secret(endpoint.previous_secret)
    endpoint.save()
    _forget_on_commit()
    return endpoint


@transaction.atomic
def rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """Start a rotation: a new secret, and the current one kept as the previous; events are
    signed with both until staff clear the previous one (once the CRM uses the new one)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if locked.from_environment:
        raise ValidationError(
            "Rotate CRM_OUTBOUND_SECRET by listing both secrets, comma-separated."
        )
    locked.previous_secret, locked.secret = locked.secret, new_secret()
    locked.save(update_fields=["previous_secret", "secret"])
    return locked.secret


@transaction.atomic
def enable_endpoint(*, endpoint: WebhookEndpoint) -> int:
    """Back on: the events that waited for it are due now, with days of retries again."""
    enabled = WebhookEndpoint.objects.filter(pk=endpoint.pk).enable()
    if enabled:
        WebhookDelivery.objects.filter(endpoint=endpoint).wait_for_endpoint(
            now=timezone.now(), retry_for=retry_window()
        )
        _forget_on_commit()
    return enabled


def disable_endpoint(*, endpoint: WebhookEndpoint, reason: str) -> int:
    """Off (staff, a 410 Gone, or a day of failures): nothing is sent to it, and its events
    wait as pending rows until it is enabled again."""
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk).disable(
        reason=reason, now=timezone.now()
    )
    if disabled:
        logger.error("CRM webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return disabled


def retry_window() -> dt.timedelta:
    return dt.timedelta(days=settings.CRM_OUTBOUND_RETRY_DAYS)


# -- where an attempt goes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    secrets: tuple[str, ...]
    session: requests.Session


def target(endpoint: WebhookEndpoint) -> Target:
    """Where and with which secrets to send; raises ValidationError when it cannot be sent
    anywhere (CRM_OUTBOUND_URL removed or wrong, an endpoint saved wrong)."""
    if endpoint.from_environment:
        if not _environment_configured():
            raise ValidationError("CRM_OUTBOUND_URL or CRM_OUTBOUND_SECRET is no longer set.")
        url = check_environment_url(settings.CRM_OUTBOUND_URL)
        secrets = tuple(check_secret(s) for s in settings.CRM_OUTBOUND_SECRET)
        # The operator's own address: any host it names, loopback included.
        return Target(url=url, secrets=secrets, session=requests.Session())
    secrets = tuple(check_secret(s) for s in (endpoint.secret, endpoint.previous_secret) if s)
    return Target(url=check_public_url(endpoint.url), secrets=secrets, session=public_session())
