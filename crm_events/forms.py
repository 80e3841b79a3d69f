from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm_events.actions.requests import (
    ADDRESS_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    MAX_PHOTOS,
    WINDOW_MAX_DAYS_AHEAD,
    Window,
    check_window,
)
from crm_events.models import Call, WorkRequest
from messaging.attachments import decoded
from messaging.forms import MultipleFileInput, PhotosField
from portal.models import Project


class KeyedForm(forms.Form):
    # Made by the page (a UUID), so a double click or a retried request acts once.
    key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not key.replace("-", "").isalnum():
            raise ValidationError("That form key is malformed; reload the page.")
        return key


class RescheduleRequestForm(KeyedForm):
    note = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Anything we should know? (optional)",
    )


class ProjectChoiceForm(KeyedForm):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False)

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.filter(customer=customer)


class LogCallForm(ProjectChoiceForm):
    started_at = forms.DateTimeField(
        label="Time of the call",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)", min_value=0, max_value=24 * 60, initial=5
    )
    direction = forms.ChoiceField(choices=Call.Direction.choices, initial=Call.Direction.OUTBOUND)
    transcript = forms.CharField(
        label="Transcript or notes (staff only)",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_started_at(self) -> dt.datetime:
        value = self.cleaned_data["started_at"]
        if value > timezone.now() + dt.timedelta(minutes=5):
            raise ValidationError("A call you log has already happened.")
        return value


class CrewOnTheWayForm(ProjectChoiceForm):
    eta_minutes = forms.IntegerField(
        label="Arriving in (minutes)", min_value=1, max_value=24 * 60, initial=20
    )


class RequestPhotosField(PhotosField):
    max_files = MAX_PHOTOS
    too_many = "Attach at most {limit} photos."
    photos_only = True


class WorkRequestForm(KeyedForm):
    """/requests/new/. The form checks what it can see (lengths, dates, photos' headers);
    `request_work` checks again, as every caller's last word."""

    description = forms.CharField(
        label="What needs doing?",
        max_length=DESCRIPTION_MAX_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Say what needs doing."},
    )
    address = forms.CharField(
        label="Address of the work",
        max_length=ADDRESS_MAX_LENGTH,
        error_messages={"required": "Say where the work is."},
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    window1_date = forms.DateField(
        label="Day",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"required": "Choose a day that suits you."},
    )
    window1_part = forms.ChoiceField(
        label="Time of day", choices=WorkRequest.PartOfDay.choices, initial="morning"
    )
    window2_date = forms.DateField(
        label="Day",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    window2_part = forms.ChoiceField(
        label="Time of day",
        choices=WorkRequest.PartOfDay.choices,
        initial="afternoon",
        required=False,
    )
    photos = RequestPhotosField(
        label=f"Photos (optional, up to {MAX_PHOTOS})",
        required=False,
        widget=MultipleFileInput(attrs={"accept": "image/*"}),
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        today = timezone.localdate()
        for name in ("window1_date", "window2_date"):
            self.fields[name].widget.attrs["min"] = (today + dt.timedelta(days=1)).isoformat()
            self.fields[name].widget.attrs["max"] = (
                today + dt.timedelta(days=WINDOW_MAX_DAYS_AHEAD)
            ).isoformat()

    def _window(self, n: int) -> Window | None:
        day = self.cleaned_data.get(f"window{n}_date")
        part = self.cleaned_data.get(f"window{n}_part")
        if day is None or not part:
            return None
        window = Window(date=day, part=part)
        try:
            check_window(window, customer=self.customer)
        except ValidationError as error:
            self.add_error(f"window{n}_date", error)
            return None
        return window

    def clean(self):
        data = super().clean()
        windows = [w for w in (self._window(1), self._window(2)) if w is not None]
        if len(windows) == 2 and windows[0] == windows[1]:
            self.add_error("window2_date", "Choose a second time that differs from the first.")
        data["windows"] = windows
        if "description" in data and not data["description"].strip():
            self.add_error("description", "Say what needs doing.")
        if data.get("photos") and not self.errors:
            # Decoding is the costly check: last, once nothing cheaper refuses the request.
            try:
                data["photos"] = [decoded(photo) for photo in data["photos"]]
            except ValidationError as error:
                self.add_error("photos", error)
        return data


class _EstimateDecisionForm(forms.Form):
    # The version the page showed: a newer one is refused, so nobody signs unseen content.
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ApproveEstimateForm(_EstimateDecisionForm):
    options = forms.TypedMultipleChoiceField(
        label="Options", coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    name = forms.CharField(
        label="Type your full name to sign",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": "Type your full name to sign."},
    )
    agree = forms.BooleanField(
        label="I agree to the terms above and approve this estimate.",
        error_messages={"required": "Tick “I agree” to approve."},
    )

    def __init__(self, *args, estimate, money_label, **kwargs):
        super().__init__(*args, **kwargs)
        self.optional_lines = [line for line in estimate.lines.all() if line.optional]
        self.fields["options"].choices = [
            (line.position, f"{line.description} — {money_label(line.amount)}")
            for line in self.optional_lines
        ]

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Type your full name to sign.")
        return name


class DeclineEstimateForm(_EstimateDecisionForm):
    reason = forms.CharField(
        label="Why not? (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
