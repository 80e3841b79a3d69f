"""One attempt to deliver an event to an endpoint: claim the row, sign, POST outside any
transaction, record what happened under the claim.

- 2xx: delivered. Nothing else counts: a redirect is not followed (the CRM's address is what
  staff entered, not wherever it points us) and is retried like a failure.
- 410 Gone: the CRM says this endpoint is no more: it is disabled, and its events wait.
- Anything else (a timeout, a refused connection, a 5xx, a 4xx, a private address): retried
  with exponential backoff and jitter, for CRM_OUTBOUND_RETRY_DAYS after the event; a
  `Retry-After` (seconds or an HTTP date) is honoured when later than the backoff. An endpoint
  whose every attempt failed for CRM_OUTBOUND_DISABLE_AFTER_HOURS is disabled with a note.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
import uuid
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from crm_events.outbound import endpoints
from crm_events.outbound.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.safe_http import PrivateAddressRefused

logger = logging.getLogger(__name__)

USER_AGENT = "Porchlight-Webhooks/1.0"
RESPONSE_BYTES_KEPT = 2000


def sign(*, secrets: tuple[str, ...], msg_id: str, timestamp: dt.datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,<sig>` per secret, space-separated (a receiver
    accepts the request when any one matches: this is how a secret is rotated)."""
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets
    )


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after failed attempt number `attempts` (1, 2, …): doubling from the
    base up to the cap, with "equal jitter" (between half and all of it), so endpoints that
    failed together do not all come back at once."""
    base = settings.CRM_OUTBOUND_RETRY_BASE_SECONDS
    ceiling = min(settings.CRM_OUTBOUND_RETRY_MAX_SECONDS, base * 2 ** min(attempts - 1, 30))
    return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def retry_after(value: str, now: dt.datetime) -> dt.timedelta | None:
    """`Retry-After`: delay-seconds or an HTTP date; None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        wait = dt.timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        wait = when - now
    most = dt.timedelta(seconds=settings.CRM_OUTBOUND_RETRY_AFTER_MAX_SECONDS)
    return max(dt.timedelta(0), min(wait, most))


@dataclass
class _Outcome:
    status_code: int | None = None
    error: str = ""
    response_body: str = ""
    retry_after: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.status_code is not None and 300 <= self.status_code < 400:
            return f"The endpoint answered {self.status_code} (a redirect, not followed)"
        return f"The endpoint answered {self.status_code}"


def _post(target: endpoints.Target, body: str, headers: dict[str, str]) -> _Outcome:
    timeout = settings.CRM_OUTBOUND_TIMEOUT
    try:
        with target.session.post(
            target.url,
            data=body.encode(),
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            kept = response.raw.read(RESPONSE_BYTES_KEPT, decode_content=True) or b""
            return _Outcome(
                status_code=response.status_code,
                response_body=kept.decode("utf-8", "replace"),
                retry_after=response.headers.get("Retry-After", ""),
            )
    except PrivateAddressRefused:
        return _Outcome(error="Refused: the endpoint's host resolves to a non-public address")
    except requests.Timeout:
        return _Outcome(error=f"No answer within {timeout:g} seconds")
    except requests.ConnectionError as exc:
        return _Outcome(error=f"Could not connect: {type(exc).__name__}")
    except requests.RequestException as exc:
        return _Outcome(error=f"Request failed: {type(exc).__name__}")


def send_delivery(*, delivery_id: int) -> str:
    """Make one attempt at a due delivery, if it can be claimed; returns what happened."""
    token, now = uuid.uuid4(), timezone.now()
    if not WebhookDelivery.objects.filter(pk=delivery_id).claim(token=token, now=now):
        return "not claimed"
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    rows = WebhookDelivery.objects.filter(pk=delivery_id).claimed_by(token)
    duration_ms = 0
    try:
        target = endpoints.target(endpoint)
    except ValidationError as error:
        outcome, url, headers = _Outcome(error=f"Not sent: {error.messages[0]}"), endpoint.url, {}
    else:
        url = target.url
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(
                secrets=target.secrets, msg_id=event.event_id, timestamp=now, body=event.body
            ),
        }
        started = time.monotonic()
        with target.session:
            outcome = _post(target, event.body, headers)
        duration_ms = int((time.monotonic() - started) * 1000)
    WebhookAttempt.objects.create(
        delivery=delivery,
        endpoint=endpoint,
        started_at=now,
        duration_ms=duration_ms,
        url=url[:500],
        request_headers=headers,
        status_code=outcome.status_code,
        response_body=outcome.response_body,
        error=outcome.error[:500],
    )
    return _record(rows, delivery=delivery, endpoint=endpoint, outcome=outcome)


def _record(
    rows, *, delivery: WebhookDelivery, endpoint: WebhookEndpoint, outcome: _Outcome
) -> str:
    now = timezone.now()
    if outcome.delivered:
        rows.record_delivered(status_code=outcome.status_code, now=now)
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
            failing_since=None
        )
        return "delivered"
    note = outcome.describe()
    if outcome.status_code == 410:
        endpoints.disable_endpoint(
            endpoint=endpoint,
            reason="The endpoint answered 410 Gone. Its events wait here; enable it once "
            "the CRM takes them again.",
        )
        # Its event waits with the endpoint's others: nothing is lost.
        rows.retry(next_attempt_at=now, status_code=410, note=note)
        return "gone"
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    day_ago = now - dt.timedelta(hours=settings.CRM_OUTBOUND_DISABLE_AFTER_HOURS)
    if WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__lte=day_ago).exists():
        endpoints.disable_endpoint(
            endpoint=endpoint,
            reason=f"Every attempt failed for {settings.CRM_OUTBOUND_DISABLE_AFTER_HOURS} "
            f"hours (the last: {note}). Its events wait here; enable it once the CRM is back.",
        )
    wait = backoff(delivery.attempts)
    asked = retry_after(outcome.retry_after, now)
    if asked is not None and asked > wait:
        wait = asked
    if now >= delivery.give_up_at:
        rows.fail(
            status_code=outcome.status_code,
            note=f"Gave up after {delivery.attempts} attempts over "
            f"{settings.CRM_OUTBOUND_RETRY_DAYS} days; the last: {note}",
        )
        return "failed"
    rows.retry(next_attempt_at=now + wait, status_code=outcome.status_code, note=note)
    return "retry"
