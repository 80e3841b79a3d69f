"""Phone numbers are stored in E.164 (+15555550123) so matching an inbound SMS is exact."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import models

DEFAULT_REGION = "US"


def normalize_phone(raw: str, *, region: str = DEFAULT_REGION) -> str:
    """Return `raw` in E.164, or raise ValidationError with a reason a person can act on."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            "“%(raw)s” is not a phone number.", code="invalid_phone", params={"raw": raw}
        ) from exc
    # is_possible rather than is_valid: the 555 numbers of demos and tests are possible but
    # not allocated, and carriers, not we, are the judge of allocation.
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError(
            "“%(raw)s” is not a phone number.", code="invalid_phone", params={"raw": raw}
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """E.164 to the national format people read: (555) 555-0123."""
    if not e164:
        return ""
    parsed = phonenumbers.parse(e164, DEFAULT_REGION)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


class PhoneNumberField(models.CharField):
    """A CharField whose clean() normalises to E.164, so every form (admin too) stores it so."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 20)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return normalize_phone(value) if value else value
