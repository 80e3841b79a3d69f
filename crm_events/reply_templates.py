"""Saved replies: staff-written texts with variables, filled in for one customer.

A saved reply's body names variables in braces, "Hi {first_name}, the deposit for {project}
…". Which variables exist is fixed here; a body naming any other, or with a brace that opens
or closes nothing, is refused when it is saved (the model's validator, so the admin's form
says why), never when a message is being sent. Filling in is plain substitution, never
`str.format` (whose `{first_name.__class__}` would reach into objects).

A variable this customer has no value for (no visit booked, no open invoice) becomes a
bracketed fallback, "[no visit scheduled]", that reads as something to edit, and the reply
says which were missing so the reply box can point at them before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

# name -> (what staff read in the admin, the fallback for a customer without a value)
VARIABLES = {
    "first_name": ("the customer's first name", "[first name]"),
    "project": (
        "their project: the only one, else the most recent active one, else the most recent",
        "[no project]",
    ),
    "next_visit": (
        "their next scheduled visit, in the business's time zone (“Thu May 15, 8–9am”)",
        "[no visit scheduled]",
    ),
    "invoice_total": ("the total of their latest open (sent, unpaid) invoice", "[no open invoice]"),
}

_VARIABLE = re.compile(r"\{([^{}]*)\}")


def check_body(body: str) -> None:
    """ValidationError naming every unknown variable and any stray brace."""
    errors = []
    unknown = [name for name in _VARIABLE.findall(body) if name not in VARIABLES]
    if unknown:
        names = ", ".join(f"{{{name}}}" for name in dict.fromkeys(unknown))
        known = ", ".join(f"{{{name}}}" for name in VARIABLES)
        errors.append(
            ValidationError(
                f"Unknown variable {names}. The variables are {known}.", code="unknown_variable"
            )
        )
    leftover = _VARIABLE.sub("", body)
    if "{" in leftover or "}" in leftover:
        errors.append(
            ValidationError(
                "A “{” or “}” opens or closes nothing: write a variable as {first_name}.",
                code="bad_braces",
            )
        )
    if errors:
        raise ValidationError(errors)


def fill(body: str, values: dict[str, str | None]) -> tuple[str, list[str]]:
    """The body with each variable replaced by its value or its fallback, and the names of
    the variables that had no value (in the order they first appear)."""
    missing: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group(1)
        value = values.get(name)
        if value:
            return value
        if name not in missing:
            missing.append(name)
        return VARIABLES[name][1] if name in VARIABLES else match.group(0)

    return _VARIABLE.sub(replace, body), missing


@dataclass(frozen=True)
class FilledReply:
    id: int
    name: str
    text: str
    missing: list[str]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "text": self.text,
            "missing": [
                {"variable": name, "fallback": VARIABLES[name][1]} for name in self.missing
            ],
        }
