"""The event API's request and response bodies (pydantic, through django-ninja). These are
the contract in docs/crm-api.md; the OpenAPI document at /api/openapi.json is made from them.
Validation here is complete before anything is written: types, money, dates, lengths.

The document must say exactly what the server accepts (schemathesis' positive-data-acceptance
check holds it to that), so every rule on a single field is a JSON Schema keyword that
pydantic itself enforces: text and money are patterns, the customer is "exactly one of"
(`oneOf`), currencies an enum. Patterns run with Python's `re` on both sides (pydantic here,
the jsonschema and hypothesis tools that read the document) and are plain enough for ECMA
clients. What the document cannot say is listed in docs/crm-api.md.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from babel.numbers import list_currencies
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from crm_events.models import DOCUMENT_NUMBER

# Control characters no field takes (PostgreSQL text cannot hold NUL); tab, LF and CR may be.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f"
# What Python's str.strip() removes beside those: a field of only these is blank.
_SPACE = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
OPTIONAL_TEXT = rf"^[^{_CONTROL}]*$"
# Up to 10 digits before the point and 2 after: what the database's columns hold.
MONEY = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"
# More than zero, otherwise as MONEY.
POSITIVE_MONEY = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,9}(\.[0-9]{1,2})?)$"
# An https address with a host; no spaces or control characters.
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\x00-\x20\x7f]*)?$"
# More than zero, up to 7 digits before the point and 3 after.
QUANTITY = r"^([1-9][0-9]{0,6}(\.[0-9]{1,3})?|0\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$"
CURRENCIES = tuple(sorted(c for c in list_currencies() if len(c) == 3 and c.isupper()))


# What a refused pattern means, for the problem's `errors` (pydantic would quote the regex).
PATTERN_MESSAGES = {
    TEXT: "must not be blank or contain control characters",
    OPTIONAL_TEXT: "must not contain control characters",
    MONEY: "must be a decimal string such as 4200.00: at most 2 places, never negative",
    QUANTITY: "must be a decimal string more than 0, such as 1 or 2.5: at most 3 places",
    POSITIVE_MONEY: "must be a decimal string more than 0, such as 1000.00: at most 2 places",
    HTTPS_URL: "must be an https:// address",
}


def Text(max_length: int, min_length: int = 1):  # noqa: N802 - a type factory
    """Text without control characters, stripped; unless `min_length` is 0, not blank."""
    return Annotated[
        str,
        Field(
            min_length=min_length,
            max_length=max_length,
            pattern=TEXT if min_length else OPTIONAL_TEXT,
        ),
        AfterValidator(str.strip),
    ]


Money = Annotated[
    str,
    Field(pattern=MONEY, description="A decimal string: at most 2 places, never negative."),
    AfterValidator(Decimal),
]
PositiveMoney = Annotated[
    str,
    Field(pattern=POSITIVE_MONEY, description="A decimal string more than 0, at most 2 places."),
    AfterValidator(Decimal),
]
HttpsUrl = Annotated[
    str,
    Field(pattern=HTTPS_URL, max_length=500, description="An https:// address."),
]
Quantity = Annotated[
    str,
    Field(pattern=QUANTITY, description="A decimal string, more than 0, at most 3 places."),
    AfterValidator(Decimal),
]


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return value  # year 1 east of UTC has no UTC form; left as sent


# RFC 3339 (the document's date-time) allows offsets to ±23:59; PostgreSQL reads at most
# ±15:59, so a time is kept in UTC from the door on.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]

Currency = Annotated[
    Literal[CURRENCIES],  # type: ignore[valid-type]
    Field(description="ISO 4217, such as USD."),
]
DocumentNumber = Annotated[
    str,
    Field(
        pattern=f"^{DOCUMENT_NUMBER}$",
        description="Letters, digits, “-”, “_” and “.”, starting with a letter or digit; "
        "it is the document's address (/invoices/<number>/).",
    ),
    AfterValidator(str.strip),
]


PATTERN_MESSAGES[f"^{DOCUMENT_NUMBER}$"] = (
    "must be 1 to 40 letters, digits, “-”, “_” or “.”, starting with a letter or digit"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


def _exactly_one(schema: dict[str, Any]) -> None:
    # A name given is a string or an integer, never null: "exactly one" is then `oneOf` on
    # which one is present.
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["oneOf"] = [{"required": [name]} for name in ("email", "phone", "id")]


class CustomerRef(Strict):
    """Exactly one of: the customer's email, phone (any format), or Porchlight id."""

    model_config = ConfigDict(
        extra="forbid", regex_engine="python-re", json_schema_extra=_exactly_one
    )

    # None stands for "not given": null itself is refused (the types take no None).
    email: Text(254) = None  # type: ignore[assignment]
    phone: Text(40) = None  # type: ignore[assignment]
    id: Annotated[int, Field(ge=1, le=2**62)] = None  # type: ignore[assignment]
    # Besides the one that names them: the customer's id in the CRM, recorded the first time
    # (a different one for the same customer, or one another customer has, is refused).
    crm_id: Text(100) = Field(  # type: ignore[assignment]
        None, description="Your CRM's id of the customer; events to you carry it back."
    )

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


class EstimateLineIn(LineIn):
    optional: bool = Field(
        False, description="Not in the total; the customer may choose it when approving."
    )


class InvoiceData(Strict):
    number: DocumentNumber
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    total: Money | None = None
    currency: Currency = "USD"
    due_on: dt.date | None = None
    payment_url: HttpsUrl | None = Field(
        None, description="Where the customer pays (https only); the portal shows “Pay”."
    )
    id: Text(100) | None = Field(None, description="The CRM's own id.")


class EstimateData(Strict):
    number: DocumentNumber
    lines: Annotated[list[EstimateLineIn], Field(min_length=1, max_length=200)]
    total: Money | None = Field(None, description="Of the lines that are not optional.")
    currency: Currency = "USD"
    valid_until: dt.date | None = None
    terms: Text(20000, min_length=0) = Field("", description="The terms the customer agrees to.")
    id: Text(100) | None = None


class PaymentData(Strict):
    """`invoice.paid`: with `amount`, one payment (several make a partial payment); without,
    the invoice is paid in full."""

    number: DocumentNumber
    amount: PositiveMoney | None = Field(None, description="This payment; omitted: in full.")
    method: Text(40) | None = Field(None, description="card, ach, check…")
    receipt_url: HttpsUrl | None = Field(None, description="The processor's receipt (https).")
    id: Text(100) | None = Field(
        None, description="The CRM's payment id: the same id again is the same payment."
    )
    paid_at: Instant | None = None


class NumberData(Strict):
    """Names an invoice or estimate already sent."""

    number: DocumentNumber


class ContractData(Strict):
    number: Text(40)
    title: Text(200)
    id: Text(100) | None = None


class AppointmentData(Strict):
    id: Text(100) = Field(description="The CRM's id of the appointment.")
    title: Text(160)
    starts_at: Instant
    ends_at: Instant
    crew_note: Text(2000, min_length=0) = ""


class RescheduleData(Strict):
    id: Text(100)
    starts_at: Instant
    ends_at: Instant


class AppointmentRef(Strict):
    id: Text(100)


class CallData(Strict):
    started_at: Instant
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
    "invoice.paid": PaymentData,
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


class FieldError(BaseModel):
    """One field of a refused event."""

    field: str = Field(description="The field's dotted path in the event, such as data.total.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: every refusal (400, 401, 409, 422)."""

    type: str = Field(description="urn:porchlight:problem:<slug>; docs/crm-api.md lists them.")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="For invalid-event: each field.")
