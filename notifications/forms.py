from __future__ import annotations

import base64
import binascii
import datetime as dt
import zoneinfo
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from notifications.quiet_hours import QuietHours, window_length
from notifications.safe_http import allowed_url

# Longer than this and the window is more likely start and end swapped than meant.
MAX_QUIET_HOURS = dt.timedelta(hours=16)


def _zone_label(zone: str) -> str:
    return zone.partition("/")[2].replace("_", " ").replace("/", " – ") or zone


@cache
def zones_by_region() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Every zone, grouped by its region ("America", "Europe"…), cities A to Z."""
    regions: dict[str, list[tuple[str, str]]] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        region = zone.partition("/")[0]
        if "/" in zone and region not in ("Etc", "SystemV", "US", "Canada", "Brazil", "Mexico"):
            regions.setdefault(region, []).append((zone, _zone_label(zone)))
    regions["Other"] = [("UTC", "UTC")]
    return tuple((region, tuple(zones)) for region, zones in regions.items())


def time_zone_choices(suggested: list[str] = ()) -> list:
    """Grouped choices, with the zones this person most likely lives in first (their own,
    their contractor's; the page adds the device's)."""
    known = {z for _, zones in zones_by_region() for z, _ in zones}
    first = [z for z in dict.fromkeys(suggested) if z in known]
    groups = [(region, list(zones)) for region, zones in zones_by_region()]
    if first:
        groups.insert(0, ("Suggested", [(z, z.replace("_", " ")) for z in first]))
    return groups


def _clock(t: dt.time) -> str:
    return f"{t.strftime('%I').lstrip('0')}:{t:%M}{t.strftime('%p').lower()}"


class PreferencesForm(forms.Form):
    sms_enabled = forms.BooleanField(required=False, label="Text messages (SMS)")
    email_enabled = forms.BooleanField(required=False, label="Email")
    push_enabled = forms.BooleanField(required=False, label="Push notifications")
    quiet_hours_enabled = forms.BooleanField(
        required=False, label="Hold notifications in these hours"
    )
    quiet_start = forms.TimeField(
        label="From",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Enter the start as a time, such as 21:00."},
    )
    quiet_end = forms.TimeField(
        label="Until",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Enter the end as a time, such as 08:00."},
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=time_zone_choices,
        error_messages={"invalid_choice": "Choose your time zone from the list."},
    )

    def __init__(self, *args, suggested_zones: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices(suggested_zones)

    def clean(self):
        data = super().clean()
        start, end, zone = data.get("quiet_start"), data.get("quiet_end"), data.get("time_zone")
        if start is None or end is None or zone is None:
            return data
        quiet = QuietHours(start=start, end=end, time_zone=zone)
        if quiet.is_empty:
            raise ValidationError(
                "Quiet hours need different start and end times (%(at)s to %(at)s is no time "
                "at all).",
                code="empty_window",
                params={"at": _clock(start)},
            )
        length = window_length(quiet)
        if length > MAX_QUIET_HOURS:
            hours = round(length.total_seconds() / 3600)
            raise ValidationError(
                "From %(start)s until %(end)s is %(hours)s hours of quiet, leaving notifications "
                "only %(left)s hours a day. Did you swap the times? For nights, start in the "
                "evening and end in the morning.",
                code="inverted_window",
                params={
                    "start": _clock(start),
                    "end": _clock(end),
                    "hours": hours,
                    "left": 24 - hours,
                },
            )
        return data


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class PushSubscriptionForm(forms.Form):
    """What `PushSubscription.toJSON()` gives in the browser, flattened by the page."""

    endpoint = forms.URLField(max_length=1000, assume_scheme="https")
    p256dh = forms.CharField(max_length=200)
    auth = forms.CharField(max_length=100)

    def clean_endpoint(self) -> str:
        endpoint = self.cleaned_data["endpoint"]
        if not allowed_url(endpoint, settings.WEB_PUSH_ENDPOINT_HOSTS):
            raise ValidationError("That push service is not one this site sends to.")
        return endpoint

    def clean_p256dh(self) -> str:
        value = self.cleaned_data["p256dh"].strip()
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url(value))
        except (ValueError, binascii.Error):
            raise ValidationError("The device's encryption key is malformed.") from None
        return value

    def clean_auth(self) -> str:
        value = self.cleaned_data["auth"].strip()
        try:
            secret = _b64url(value)
        except (ValueError, binascii.Error):
            secret = b""
        if len(secret) != 16:
            raise ValidationError("The device's authentication secret is malformed.")
        return value


class PushEndpointForm(forms.Form):
    endpoint = forms.URLField(max_length=1000, assume_scheme="https")


# Twilio's statuses for a message; the callback may send any of them.
TWILIO_MESSAGE_STATUSES = [
    "accepted",
    "scheduled",
    "canceled",
    "queued",
    "sending",
    "sent",
    "failed",
    "delivered",
    "undelivered",
    "receiving",
    "received",
    "read",
    "partially_delivered",
]


class WebhookForm(forms.Form):
    """A provider's callback parameters, checked before anything is looked up: unexpected
    shapes are a 400 with the reason, never a database error."""

    def reason(self) -> str:
        return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in self.errors.items())


class TwilioStatusForm(WebhookForm):
    # Twilio's ids are two letters and 32 hex digits (SM…, MM…).
    MessageSid = forms.RegexField(regex=r"^[A-Za-z]{2}[0-9a-fA-F]{32}$", max_length=34)
    MessageStatus = forms.ChoiceField(choices=[(s, s) for s in TWILIO_MESSAGE_STATUSES])
    ErrorCode = forms.RegexField(regex=r"^[0-9]{1,10}$", required=False)
    # Our delivery id, from the callback URL we gave Twilio (ASCII digits only: "²" is a
    # digit to str.isdigit but not to int()).
    d = forms.RegexField(regex=r"^[0-9]{1,18}$", required=False)

    def clean_d(self) -> int | None:
        return int(self.cleaned_data["d"]) if self.cleaned_data["d"] else None
