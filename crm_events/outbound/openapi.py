"""The outbound events in /api/openapi.json, under `webhooks` (OpenAPI 3.1): one entry per
type, with the headers every request carries and the body's schema, made from these pydantic
models. tests/crm_events/test_outbound_openapi.py validates the bodies the portal really
sends against the published document, so the two cannot drift apart.

A colleague adding `data` to `customer.updated` (free-form until then)
writes its model here."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from crm_events.outbound.models import EventType

_MONEY = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutboundCustomer(_Strict):
    id: int = Field(description="The customer's Porchlight id.")
    crm_id: str | None = Field(description="The customer's id in your CRM, when known.")


class MessageReceivedData(_Strict):
    entry_id: int = Field(description="The message's id in the thread.")
    seq: int = Field(ge=1, description="Its place in the customer's thread.")
    channel: Literal["portal", "sms", "email"]
    body: str
    attachment_count: int = Field(ge=0)


class Signer(_Strict):
    name: str = Field(description="The full name the customer typed to sign.")
    ip_address: str | None = Field(description="The address they signed from.")
    user_agent: str = Field(description="Their browser's User-Agent.")


class ChosenOption(_Strict):
    position: int = Field(ge=0, description="The line's place in the estimate, from 0.")
    description: str
    amount: str = Field(pattern=_MONEY)


class EstimateDecisionData(_Strict):
    number: str
    crm_id: str | None = Field(description="The estimate's id in your CRM, when it gave one.")
    version: int = Field(
        ge=1,
        description="Which version was decided (1, then one more for "
        "each estimate.sent with other content).",
    )
    total: str = Field(pattern=_MONEY, description="Approved: with the options chosen.")
    currency: str = Field(min_length=3, max_length=3)
    decided_by: Literal["customer", "staff"]
    decided_at: AwareDatetime
    signer: Signer | None = Field(description="Who decided in the portal; null for staff.")
    document_sha256: str | None = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the canonical JSON of the document shown (docs/crm.md).",
    )
    chosen_options: list[ChosenOption] = Field(description="The optional lines chosen.")
    reason: str = Field(description="Why it was declined, if the customer said; else empty.")


class AppointmentRefData(_Strict):
    id: int = Field(description="The appointment's Porchlight id.")
    crm_id: str | None = Field(description="Its id in your CRM (appointment.scheduled's id).")
    title: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class AppointmentConfirmedData(AppointmentRefData):
    confirmed_at: AwareDatetime


class RescheduleRequestedData(AppointmentRefData):
    note: str = Field(description="What the customer wrote; may be empty.")
    entry_id: int = Field(description="The message in the thread that asked.")


class ConversationReadData(_Strict):
    up_to_seq: int = Field(ge=1, description="The customer has read the thread up to this seq.")
    read_at: AwareDatetime


class RequestWindow(_Strict):
    date: dt.date = Field(description="A day that suits, in the customer's time zone.")
    part: Literal["morning", "afternoon", "evening"] = Field(
        description="Morning 8am–12pm, afternoon 12–5pm, evening 5–8pm, the customer's time."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class RequestPhoto(_Strict):
    id: int = Field(description="The attachment's id in Porchlight.")
    name: str
    content_type: str
    size: int = Field(description="Bytes.")
    url: str = Field(
        description="Absolute; GET it without credentials. Signed, valid for the retry "
        "window (CRM_OUTBOUND_RETRY_DAYS) and a week more; copy the file, not the link."
    )


class RequestCreatedData(_Strict):
    request_id: int
    entry_id: int = Field(description="The request's card in the thread.")
    description: str = Field(max_length=2000)
    address: str = Field(max_length=300)
    time_zone: str = Field(description="The customer's IANA time zone.")
    windows: list[RequestWindow] = Field(min_length=1, max_length=2)
    photos: list[RequestPhoto] = Field(max_length=5)


class FreeFormData(BaseModel):
    model_config = ConfigDict(extra="allow")


DATA: dict[str, type[BaseModel]] = {
    EventType.MESSAGE_RECEIVED: MessageReceivedData,
    EventType.ESTIMATE_APPROVED: EstimateDecisionData,
    EventType.ESTIMATE_DECLINED: EstimateDecisionData,
    EventType.APPOINTMENT_CONFIRMED: AppointmentConfirmedData,
    EventType.APPOINTMENT_RESCHEDULE_REQUESTED: RescheduleRequestedData,
    EventType.CONVERSATION_READ: ConversationReadData,
    EventType.CUSTOMER_UPDATED: FreeFormData,
    EventType.REQUEST_CREATED: RequestCreatedData,
}

SUMMARIES = {
    EventType.MESSAGE_RECEIVED: "The customer wrote (portal, SMS or email).",
    EventType.ESTIMATE_APPROVED: "An estimate was approved in the portal.",
    EventType.ESTIMATE_DECLINED: "An estimate was declined in the portal.",
    EventType.APPOINTMENT_CONFIRMED: "A visit was confirmed.",
    EventType.APPOINTMENT_RESCHEDULE_REQUESTED: "The customer asked for another time.",
    EventType.CONVERSATION_READ: "The customer read the thread up to a sequence number.",
    EventType.CUSTOMER_UPDATED: "The customer's contact details changed (data: to come).",
    EventType.REQUEST_CREATED: "The customer asked for work (/requests/new/).",
}


def schema_name(event_type: str) -> str:
    """`appointment.reschedule_requested` -> `OutboundAppointmentRescheduleRequested`."""
    words = event_type.replace(".", "_").split("_")
    return "Outbound" + "".join(w.capitalize() for w in words)


def _envelope(event_type: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "type": (Literal[event_type], ...),  # type: ignore[valid-type]
        "id": (str, Field(pattern=r"^evt_[0-9a-f]{32}$", description="Also `webhook-id`.")),
        "sequence": (
            int,
            Field(ge=1, description="Gap-free per customer, in commit order: order by it."),
        ),
        "occurred_at": (AwareDatetime, ...),
        "customer": (OutboundCustomer, ...),
        "project": (str | None, Field(description="The project's code, such as PRJ-1042.")),
        "data": (DATA[event_type], ...),
    }
    return create_model(schema_name(event_type), __base__=_Strict, **fields)


_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id: the same on every retry and resend. Deduplicate by it.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when this attempt was signed; refuse it if far off.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": (
            'Space-separated "v1,<base64 HMAC-SHA256>" of "<id>.<timestamp>.<body>", one per '
            "secret in use (two during a rotation); accept when any one matches."
        ),
        "schema": {"type": "string"},
    },
]


def add_webhooks(document: dict) -> dict:
    """Add `webhooks` and their schemas to an OpenAPI 3.1 document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    webhooks = {}
    for event_type in EventType.values:
        model = _envelope(event_type)
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[model.__name__] = schema
        webhooks[event_type] = {
            "post": {
                "operationId": "webhook_" + event_type.replace(".", "_"),
                "summary": SUMMARIES[event_type],
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Received. Any 2xx counts; redirects are not followed."},
                    "410": {"description": "Gone: the endpoint is disabled until staff enable it."},
                    "default": {
                        "description": "Anything else (or no answer in 10 s) is retried with "
                        "backoff for 3 days, after Retry-After when given."
                    },
                },
            }
        }
    document["webhooks"] = webhooks
    return document
