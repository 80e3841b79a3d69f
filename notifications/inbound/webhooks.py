"""Who may call our provider webhooks. A webhook is an open door: each checks its provider's
signature or secret first, and refuses everything, saying why in the log, when none is
configured (a forged callback could otherwise fail deliveries or opt customers out).

- Twilio signs each request with the account's auth token (`X-Twilio-Signature`).
- The email provider's webhooks (through django-anymail) send HTTP basic auth with the
  `user:password` of ANYMAIL_WEBHOOK_SECRET; ESPs that also sign (Mailgun, SES…) are checked
  by anymail's own view after that. Only the configured ESP's endpoints answer.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from functools import cache, wraps

from anymail.exceptions import AnymailConfigurationError
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from notifications.inbound import inbound_payload

logger = logging.getLogger(__name__)

# anymail's words when one webhook receives the other's payload ("You seem to have set
# Postmark's *inbound* webhook to Anymail's Postmark *tracking* webhook URL.").
_MISROUTED = re.compile(r"webhook\W+to Anymail's .*webhook URL", re.IGNORECASE)


# -- Twilio --------------------------------------------------------------------------------


def _urls_twilio_may_have_signed(request: HttpRequest) -> list[str]:
    """Twilio signs the URL it called: behind a TLS-terminating proxy that is the public one
    (SITE_URL + path), directly it is the one we received. (The validator itself tries each
    with and without the default port.)"""
    path = request.get_full_path()
    urls = [f"{settings.SITE_URL}{path}", request.build_absolute_uri(path)]
    return list(dict.fromkeys(urls))


def twilio_signed(view):
    """Refuse (403) a request without a valid Twilio signature, or when no auth token is
    configured. The form is validated as Twilio signs it: every value of a repeated key."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        token = settings.TWILIO_AUTH_TOKEN
        if not token:
            logger.warning("Twilio webhook refused: TWILIO_AUTH_TOKEN is not configured")
            return HttpResponseForbidden("Twilio webhooks are not configured on this server.")
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = RequestValidator(token)
        try:
            params = request.POST
        except Exception:  # a body Django cannot parse is not a body Twilio signed
            params = None
        if params is None or not any(
            validator.validate(url, params, signature)
            for url in _urls_twilio_may_have_signed(request)
        ):
            logger.warning("Twilio webhook refused: bad or missing signature on %s", request.path)
            return HttpResponseForbidden("Bad signature")
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


# -- The email provider (anymail) ----------------------------------------------------------


def configured_esp() -> str | None:
    """The anymail ESP that EMAIL_BACKEND names (`anymail.backends.<esp>.EmailBackend`)."""
    parts = settings.EMAIL_BACKEND.split(".")
    if len(parts) == 4 and parts[:2] == ["anymail", "backends"]:
        return parts[2]
    return None


def _webhook_secrets() -> list[str]:
    secret = settings.ANYMAIL.get("WEBHOOK_SECRET") or []
    return [secret] if isinstance(secret, str) else list(secret)


@cache
def _anymail_views() -> dict[tuple[str, str], object]:
    """anymail's webhook views by (esp, "tracking" | "inbound")."""
    views = {}
    for pattern in anymail_urlpatterns:
        for kind in ("tracking", "inbound"):
            suffix = f"_{kind}_webhook"
            if pattern.name and pattern.name.endswith(suffix):
                views[pattern.name.removesuffix(suffix), kind] = pattern.callback
    return views


def _basic_auth(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""


@csrf_exempt
def esp_webhook(request: HttpRequest, esp: str, kind: str) -> HttpResponse:
    """/anymail/<esp>/<tracking|inbound>/: only the configured ESP's; 403 when no webhook
    secret is set, 401 without the right basic auth; then anymail's own view."""
    view = _anymail_views().get((esp, kind))
    if view is None or esp != configured_esp():
        raise Http404("No such webhook")
    secrets = _webhook_secrets()
    if not secrets:
        logger.warning("%s %s webhook refused: ANYMAIL_WEBHOOK_SECRET is not set", esp, kind)
        return HttpResponseForbidden("Email webhooks are not configured on this server.")
    given = _basic_auth(request)
    if not any(constant_time_compare(given, secret) for secret in secrets):
        logger.warning("%s %s webhook refused: missing or wrong basic auth", esp, kind)
        response = HttpResponse("Authentication required", status=401)
        response["WWW-Authenticate"] = 'Basic realm="webhooks"'
        return response
    if kind == "inbound":
        refused = _read_inbound_body(request)
        if refused is not None:
            return refused
        # Huge headers and address lists cut down before anymail parses them (linear time).
        request._body = inbound_payload.bound(esp, request._body)
    try:
        return view(request)
    except AnymailConfigurationError as error:
        if _MISROUTED.search(str(error)):
            # anymail recognised the other webhook's payload: say which URL it belongs at.
            # A 400, not a 403: Postmark stops retrying on 403, and the mail would be lost.
            other = "tracking" if kind == "inbound" else "inbound"
            logger.warning("%s %s webhook got the %s webhook's payload", esp, kind, other)
            return HttpResponseBadRequest(
                f"This is the {kind} webhook, and this payload is for the {other} webhook: "
                f"point the email provider's {other} webhook at /anymail/{esp}/{other}/. "
                f"({error})"
            )
        logger.warning("%s %s webhook refused: anymail is not configured for it", esp, kind)
        return HttpResponseForbidden("Email webhooks are not configured on this server.")
    except ImproperlyConfigured:
        # The ESP's own signing key (Mailgun, SES...) is missing: refuse, do not 500.
        logger.warning("%s %s webhook refused: anymail is not configured for it", esp, kind)
        return HttpResponseForbidden("Email webhooks are not configured on this server.")
    except DatabaseError:
        raise  # ours, and passing: a 500 makes the ESP send it again later
    except Exception:
        # The ESP's payload could not be read (a mangled body anymail or the email package
        # chokes on): a 400 with the reason in our log, never a 500 the ESP retries forever.
        logger.exception("%s %s webhook: the payload could not be read", esp, kind)
        return HttpResponseBadRequest("The payload could not be read.")


def _read_inbound_body(request: HttpRequest) -> HttpResponse | None:
    """Inbound email payloads carry their attachments (base64 JSON, or multipart), so they
    may be larger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE allows other requests: read the
    body here, up to INBOUND_EMAIL_MAX_BYTES, and refuse anything larger (413)."""
    limit = settings.INBOUND_EMAIL_MAX_BYTES
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return HttpResponseBadRequest("Content-Length is not a number.")
    if length > limit:
        logger.warning("inbound email of %s bytes refused (limit %s)", length, limit)
        return HttpResponse("This email is too large.", status=413)
    request._body = request.read(limit + 1)  # what Django's request.body would hold
    if len(request._body) > limit:
        return HttpResponse("This email is too large.", status=413)
    return None
