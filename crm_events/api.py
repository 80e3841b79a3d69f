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

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Body, NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm_events import ingest
from crm_events.schemas import Accepted, Event, Problem

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class SignatureRefused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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
        try:
            Webhook(secret).verify(request.body, headers, json_parse=False)
        except WebhookVerificationError as error:
            logger.warning("CRM event refused: %s", error)
            raise SignatureRefused(f"Signature refused: {error}.") from None
        except (ValueError, binascii.Error, TypeError):
            # Malformed signature or header (the library splits and decodes what it gets).
            logger.warning("CRM event refused: malformed signature headers")
            raise SignatureRefused("Signature refused: malformed signature headers.") from None
        webhook_id = headers["webhook-id"]
        if len(webhook_id) > 200:
            raise SignatureRefused("webhook-id is longer than 200 characters.")
        return webhook_id


api = NinjaAPI(
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


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return _problem(401, "invalid-signature", "Invalid signature", "The request is not signed.")


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "event")]
        errors.append({"field": ".".join(loc) or "body", "message": str(error.get("msg", ""))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return _problem(422, "invalid-event", "Invalid event", detail, errors)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return _problem(400, "malformed-body", "Malformed body", "The body is not valid JSON.")
    return _problem(exc.status_code, "http-error", "Request refused", str(exc))


@api.exception_handler(ingest.Refused)
def _refused(request, exc: ingest.Refused):
    return _problem(exc.status, exc.slug, exc.title, exc.detail)


def _problem_response(description: str) -> dict:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
    }


_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "Unique per event; the idempotency key.",
        "schema": {"type": "string", "maxLength": 200},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds; refused when more than 5 minutes off.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
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
            "400": _problem_response("The body is not JSON."),
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
