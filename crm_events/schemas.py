"""The event API's request and response bodies (pydantic, through django-ninja). These are
the contract in docs/crm-api.md; the OpenAPI document at /api/openapi.json is made from them.
Validation here is complete before anything is written: types, money, dates, lengths."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no field of ours wants control characters.
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value.strip()


def Text(max_length: int, min_length: int = 1):  # noqa: N802 - a type factory
    return Annotated[
        str,
        Field(min_length=min_length, max_length=max_length),
        AfterValidator(_printable),
        AfterValidator(_not_blank(min_length)),
    ]


def _not_blank(min_length: int):
    def check(value: str) -> str:
        if min_length and not value:
            raise ValueError("must not be blank")
        return value

    return check


Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=3, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, such as USD.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRef(Strict):
    """Exactly one of: the customer's email, phone (any format), or Porchlight id."""

    email: Text(254) | None = None
    phone: Text(40) | None = None
    id: Annotated[int, Field(ge=1, le=2**62)] | None = None

    @model_validator(mode="after")
    def exactly_one(self):
        given = [name for name in ("email", "phone", "id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("name the customer by exactly one of email, phone or id")
        return self


class LineIn(Strict):
    description: Text(300)
    quantity: Quantity = Decimal(1)
    unit_price: Money


class InvoiceData(Strict):
    number: Text(40)
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    total: Money | None = None
    currency: Currency = "USD"
    due_on: dt.date | None = None
    id: Text(100) | None = Field(None, description="The CRM's own id.")


class EstimateData(Strict):
    number: Text(40)
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    total: Money | None = None
    currency: Currency = "USD"
    valid_until: dt.date | None = None
    id: Text(100) | None = None


class NumberData(Strict):
    """Names an invoice or estimate already sent."""

    number: Text(40)


class ContractData(Strict):
    number: Text(40)
    title: Text(200)
    id: Text(100) | None = None


class AppointmentData(Strict):
    id: Text(100) = Field(description="The CRM's id of the appointment.")
    title: Text(160)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    crew_note: Text(2000, min_length=0) = ""


class RescheduleData(Strict):
    id: Text(100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class AppointmentRef(Strict):
    id: Text(100)


class CallData(Strict):
    started_at: AwareDatetime
    duration_seconds: Annotated[int, Field(ge=0, le=86400)]
    direction: Literal["inbound", "outbound"] = "outbound"
    transcript: Text(20000, min_length=0) = Field("", description="Staff only; never shown.")
    id: Text(100) | None = None


class AutomatedData(Strict):
    body: Text(5000)
    urgent: bool = False
    channel: Literal["sms", "email", "portal"] = "sms"


class Envelope(Strict):
    customer: CustomerRef
    project: Text(20) | None = Field(None, description="Project code, such as PRJ-1042.")
    occurred_at: AwareDatetime | None = Field(
        None, description="When it happened in the CRM; the card is dated so."
    )


def _event(type_name: str, data_model: type[BaseModel], class_name: str):
    return type(
        class_name,
        (Envelope,),
        {
            "__annotations__": {"type": Literal[type_name], "data": data_model},
            "__module__": __name__,
        },
    )


EVENT_TYPES: dict[str, type[BaseModel]] = {
    "invoice.sent": InvoiceData,
    "invoice.paid": NumberData,
    "invoice.voided": NumberData,
    "estimate.sent": EstimateData,
    "estimate.approved": NumberData,
    "estimate.declined": NumberData,
    "contract.sent": ContractData,
    "appointment.scheduled": AppointmentData,
    "appointment.rescheduled": RescheduleData,
    "appointment.cancelled": AppointmentRef,
    "appointment.completed": AppointmentRef,
    "call.logged": CallData,
    "message.automated": AutomatedData,
}


def _class_name(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.replace(".", "_").split("_")) + "Event"


EVENT_MODELS = [_event(name, model, _class_name(name)) for name, model in EVENT_TYPES.items()]

# The body is one of these, told apart by its "type".
Event = Annotated[Union[tuple(EVENT_MODELS)], Field(discriminator="type")]  # noqa: UP007


class Accepted(BaseModel):
    """What an accepted event answers (and a replay of it answers again, byte for byte)."""

    webhook_id: str
    type: str
    result: Literal["applied"]
    record: str | None = Field(None, description="The document's page in the portal, if any.")
    entry_seq: int | None = Field(None, description="The thread entry the event made, if any.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict] | None = None
