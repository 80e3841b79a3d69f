from __future__ import annotations

import base64
import binascii
import datetime as dt
import zoneinfo
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from notifications.inbound.actions import IncomingSms
from notifications.outbound import transports
from notifications.outbound.quiet_hours import QuietHours, window_length
from notifications.safe_http import allowed_url
from portal.models import Customer
from portal.phones import normalize_phone

# Longer than this and the window is more likely start and end swapped than meant.
MAX_QUIET_HOURS = dt.timedelta(hours=16)


def _zone_label(zone: str) -> str:
    return zone.partition("/")[2].replace("_", " ").replace("/", " – ") or zone


def current_zone_names() -> set[str]:
    """The zones tzdata lists by country (zone.tab): today's names only. The rest of
    available_timezones() are backward-compatible aliases (Asmera, Atka, Godthab,
    America/Buenos_Aires beside America/Argentina/Buenos_Aires), which would list places
    twice or under names they no longer use. Without zone.tab, every zone."""
    available = zoneinfo.available_timezones()
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone.tab"
        if table.is_file():
            names = {
                fields[2]
                for line in table.read_text(encoding="utf-8").splitlines()
                if not line.startswith("#") and len(fields := line.split("\t")) >= 3
            }
            return names & available
    return available


@cache
def zones_by_region() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Every current zone, grouped by its region ("America", "Europe"…), cities A to Z."""
    regions: dict[str, list[tuple[str, str]]] = {}
    for zone in sorted(current_zone_names()):
        region = zone.partition("/")[0]
        if "/" in zone and region not in ("Etc", "SystemV", "US", "Canada", "Brazil", "Mexico"):
            regions.setdefault(region, []).append((zone, _zone_label(zone)))
    regions["Other"] = [("UTC", "UTC")]
    return tuple((region, tuple(zones)) for region, zones in regions.items())


def time_zone_choices(suggested: list[str] = ()) -> list:
    """Grouped choices, with the zones this person most likely lives in first (their own,
    their contractor's; the page adds the device's)."""
    # A zone saved under an old alias stays choosable (among the suggestions), so saving the
    # page never moves someone to another zone unasked.
    first = [z for z in dict.fromkeys(suggested) if z in zoneinfo.available_timezones()]
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


# Twilio's ids: two letters (SM, MM, AC…) and hex digits; 32 of them in real ids, 31 in the
# examples of Twilio's own documentation. Anything much longer is not Twilio's.
TWILIO_SID = r"^[A-Za-z]{2}[0-9a-fA-F]{24,40}$"

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
    MessageSid = forms.RegexField(regex=TWILIO_SID, max_length=42)
    MessageStatus = forms.ChoiceField(choices=[(s, s) for s in TWILIO_MESSAGE_STATUSES])
    ErrorCode = forms.RegexField(regex=r"^[0-9]{1,10}$", required=False)
    # Our delivery id, from the callback URL we gave Twilio (ASCII digits only: "²" is a
    # digit to str.isdigit but not to int()).
    d = forms.RegexField(regex=r"^[0-9]{1,18}$", required=False)

    def clean_d(self) -> int | None:
        return int(self.cleaned_data["d"]) if self.cleaned_data["d"] else None


class TwilioInboundForm(WebhookForm):
    """Twilio's Messaging webhook: a text (and its photos) sent to our number."""

    MessageSid = forms.RegexField(regex=TWILIO_SID, max_length=42)
    From = forms.CharField(max_length=40)
    To = forms.CharField(max_length=40, required=False)
    # Twilio caps a text at 1,600 characters; more than this is not Twilio.
    Body = forms.CharField(max_length=20_000, required=False, strip=False)
    NumMedia = forms.IntegerField(min_value=0, max_value=20, required=False)

    def incoming(self, post) -> IncomingSms:
        """The text as the inbound action takes it, with the media Twilio listed: those not
        on Twilio's hosts are refused here, with the reason recorded."""
        data = self.cleaned_data
        media, refused = [], []
        hosts = transports.twilio_media_hosts()
        for n in range(data["NumMedia"] or 0):
            url = post.get(f"MediaUrl{n}", "")
            content_type = post.get(f"MediaContentType{n}", "")[:100]
            if "\x00" in url + content_type:
                # PostgreSQL refuses NUL in JSON text; Twilio never sends one (found by R4).
                refused.append(f"photo {n + 1} is not a Twilio media link")
            elif allowed_url(url, hosts):
                media.append({"url": url[:1000], "content_type": content_type})
            else:
                refused.append(f"photo {n + 1} is not on a Twilio host")
        return IncomingSms(
            message_sid=data["MessageSid"],
            sender=_e164_or_raw(data["From"]),
            recipient=_e164_or_raw(data["To"]),
            body=data["Body"],
            media=tuple(media),
            refused_media=tuple(refused),
        )


def _e164_or_raw(number: str) -> str:
    """A phone number in E.164, or as given when it is not one (a short code, a name)."""
    try:
        return normalize_phone(number) or number.strip()
    except ValidationError:
        return number.strip()


class NewCustomerForm(forms.Form):
    """Staff making a new customer of an unmatched message's sender."""

    name = forms.CharField(
        label="Name", max_length=120, error_messages={"required": "Enter the customer's name."}
    )
    project = forms.CharField(
        label="Project (optional)",
        max_length=160,
        required=False,
        help_text="Such as Fence Repair; it gets the next PRJ- code.",
    )


class AssignForm(forms.Form):
    """Staff naming the customer an unmatched message belongs to."""

    customer = forms.CharField(
        label="Customer",
        max_length=254,
        help_text="Their email address, phone number or full name.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_customer(self) -> Customer:
        given = self.cleaned_data["customer"].strip()
        same = Q(email__iexact=given) | Q(name__iexact=given)
        number = _e164_or_raw(given)
        if number.startswith("+"):
            same |= Q(phone=number)
        matches = list(Customer.objects.filter(same).select_related("business", "user")[:2])
        if not matches:
            raise ValidationError("No customer has that email address, phone number or name.")
        if len(matches) > 1:
            raise ValidationError("More than one customer matches; use an email address.")
        return matches[0]


class StaffPreferencesForm(forms.Form):
    """/staff/settings/: how a staff member hears of their assigned threads and mentions."""

    email_enabled = forms.BooleanField(label="Email", required=False)
    push_enabled = forms.BooleanField(label="Push notifications", required=False)
