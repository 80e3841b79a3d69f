"""The CRM event API: POST /api/crm/events/, OpenAPI at /api/openapi.json.

django-ninja: the OpenAPI 3 document is made from the same pydantic models that validate the
body, so the contract cannot drift from the code, and it needs nothing beside Django (no DRF).
Order of checks: signature (Standard Webhooks, before the body is even parsed), then the
body's schema, then the event's meaning; every refusal is RFC 9457 problem+json and writes
nothing. The handler never answers 5xx for anything a sender can put in a request.
"""

from __future__ import annotations

import binascii
import json
import logging
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Body, NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_events import ingest
from crm_events.outbound import openapi as outbound_openapi
from crm_events.schemas import (
    EVENT_TYPES,
    PATTERN_MESSAGES,
    Accepted,
    Event,
    FieldError,
    Problem,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class SignatureRefused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HeaderRefused(Exception):
    """A header no retry can fix (a 400, not a 401 that a sender would retry forever)."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug, self.detail = slug, detail


# The spec's "integer Unix seconds": the library would also take "+1796417123",
# "1796417123.999", "1796417123e0" or "01796417123" (it parses a float and signs its own
# rendering, not the header).
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,11}")
MAX_WEBHOOK_ID = 200  # ApiEvent.webhook_id's length


class StandardWebhookSignature(APIKeyHeader):
    """`webhook-signature: v1,<base64 HMAC-SHA256("<id>.<timestamp>.<body>")>`, with
    `webhook-id` and `webhook-timestamp` (5 minutes' tolerance), checked by the
    standardwebhooks library against CRM_WEBHOOK_SECRET (`whsec_<base64 key>`)."""

    param_name = "webhook-signature"

    def authenticate(self, request: HttpRequest, key: str | None) -> str | None:
        secret = settings.CRM_WEBHOOK_SECRET
        if not secret:
            logger.error("CRM event refused: CRM_WEBHOOK_SECRET is not set")
            raise SignatureRefused("This server accepts no CRM events: it has no secret set.")
        headers = {
            name: request.headers.get(name, "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        if len(headers["webhook-id"]) > MAX_WEBHOOK_ID:
            raise HeaderRefused(
                "invalid-webhook-id",
                f"webhook-id is longer than {MAX_WEBHOOK_ID} characters "
                f"({len(headers['webhook-id'])}); send a shorter id.",
            )
        timestamp = headers["webhook-timestamp"]
        if timestamp and not _TIMESTAMP.fullmatch(timestamp):
            logger.warning("CRM event refused: webhook-timestamp is not integer seconds")
            raise SignatureRefused(
                "Signature refused: webhook-timestamp must be integer Unix seconds "
                "(digits only, such as 1796417123)."
            )
        try:
            Webhook(secret).verify(request.body, headers, json_parse=False)
        except WebhookVerificationError as error:
            logger.warning("CRM event refused: %s", error)
            raise SignatureRefused(f"Signature refused: {error}.") from None
        except (ValueError, binascii.Error, TypeError):
            # Malformed signature or header (the library splits and decodes what it gets).
            logger.warning("CRM event refused: malformed signature headers")
            raise SignatureRefused("Signature refused: malformed signature headers.") from None
        return headers["webhook-id"]


class CrmApi(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        # Every refusal is one component, which the responses name by $ref: generated
        # clients get one Problem type for 400, 401, 409 and 422.
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, FieldError):
            schemas[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas[model.__name__].pop("$defs", None)
        # What the portal sends the CRM (crm_events/outbound/), under `webhooks`.
        return outbound_openapi.add_webhooks(schema)


api = CrmApi(
    title="Porchlight CRM events",
    version="1.0.0",
    description=(
        "Events from the contractor's CRM land in each customer's thread. Requests are signed "
        "with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); "
        "webhook-id is the idempotency key. See docs/crm-api.md."
    ),
    urls_namespace="crm_api",
    openapi_url="/openapi.json",
    docs_url=None,  # the interactive docs load assets from a CDN; the JSON is the contract
)


def _problem(status: int, slug: str, title: str, detail: str, errors=None) -> HttpResponse:
    body = {
        "type": f"urn:porchlight:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_JSON)


@api.exception_handler(SignatureRefused)
def _signature_refused(request, exc: SignatureRefused):
    response = _problem(401, "invalid-signature", "Invalid signature", exc.detail)
    response["WWW-Authenticate"] = 'StandardWebhooks realm="crm"'
    return response


@api.exception_handler(HeaderRefused)
def _header_refused(request, exc: HeaderRefused):
    return _problem(400, exc.slug, "Invalid header", exc.detail)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return _problem(401, "invalid-signature", "Invalid signature", "The request is not signed.")


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        errors.append({"field": field_path(error.get("loc", ())), "message": _message(error)})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    if errors and all(e["field"].endswith("_url") for e in errors):
        # A payment or receipt address that is not https is refused outright: the customer
        # would be sent there from our page.
        return _problem(400, "insecure-url", "Invalid address", detail, errors)
    return _problem(422, "invalid-event", "Invalid event", detail, errors)


def _message(error: dict) -> str:
    context = error.get("ctx") or {}
    if error.get("type") == "string_pattern_mismatch" and context.get("pattern") in (
        PATTERN_MESSAGES
    ):
        return PATTERN_MESSAGES[context["pattern"]]
    if error.get("type") == "literal_error" and tuple(error.get("loc", ()))[-1:] == ("currency",):
        return f"“{error.get('input')}” is not a currency code (ISO 4217, such as USD)"
    return str(error.get("msg", ""))


def field_path(loc) -> str:
    """The documented dotted path of a field in the event (`data.total`): without the
    prefix django-ninja and pydantic put before it — where the value came from ("body"), the
    view's parameter ("event") and the union's tag (the event's type) — and nothing removed
    after it, so a field named `body` stays in the path (`data.body`)."""
    parts = [str(part) for part in loc]
    for prefix in ("body", "event"):
        if parts[:1] == [prefix]:
            parts = parts[1:]
    if parts[:1] and parts[0] in EVENT_TYPES:
        parts = parts[1:]
    return ".".join(parts) or "(body)"


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return _problem(400, "malformed-body", "Malformed body", "The body is not valid JSON.")
    return _problem(exc.status_code, "http-error", "Request refused", str(exc))


@api.exception_handler(ingest.Refused)
def _refused(request, exc: ingest.Refused):
    return _problem(exc.status, exc.slug, exc.title, exc.detail)


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "Unique per event; the idempotency key.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_WEBHOOK_ID},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Integer Unix seconds; refused when more than 5 minutes off.",
        "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,11})$"},
    },
]


@api.post(
    "/crm/events/",
    auth=StandardWebhookSignature(),
    response={200: Accepted},
    summary="Post one CRM event",
    operation_id="post_crm_event",
    openapi_extra={
        "parameters": _HEADERS,
        "responses": {
            "400": _problem_response(
                "The body is not JSON, or webhook-id is longer than 200 characters."
            ),
            "401": _problem_response("Missing, forged or stale signature."),
            "409": _problem_response("The event contradicts a record (a duplicate number)."),
            "422": _problem_response("Invalid event, unknown customer or project."),
        },
    },
)
def post_event(request: HttpRequest, event: Body[Event]):
    """Apply one event to the customer's records and thread, once per `webhook-id`."""
    answer = ingest.receive(webhook_id=request.auth, body=request.body, event=event)
    return HttpResponse(answer.body, status=answer.status, content_type="application/json")
