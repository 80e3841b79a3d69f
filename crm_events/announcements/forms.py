"""The compose form: the message and who it goes to. Parsing only; the checks that need the
recipients (none chosen, too long once filled in) are the action's."""

from __future__ import annotations

import uuid

from django import forms
from django.utils import timezone

from crm_events.announcements.audience import Choice
from crm_events.announcements.models import Announcement
from portal.models import CustomerTag, Project

Audience = Announcement.Audience


class AnnouncementForm(forms.Form):
    body = forms.CharField(
        label="Message",
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Variables: {first_name}, {project}, {visit_time} (with a visit date).",
    )
    audience = forms.ChoiceField(
        label="Send to",
        choices=Audience.choices,
        widget=forms.RadioSelect,
        initial=Audience.VISIT_ON,
    )
    visit_date = forms.DateField(
        label="Visit date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="In the business's time zone; cancelled visits do not count.",
    )
    project_status = forms.ChoiceField(
        label="Project status", choices=[("", "—"), *Project.Status.choices], required=False
    )
    tag = forms.ModelChoiceField(
        label="Tag", queryset=CustomerTag.objects.all(), required=False, empty_label="—"
    )
    form_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "initial", {"form_token": uuid.uuid4(), "visit_date": timezone.localdate()}
        )
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        needs = {
            Audience.VISIT_ON: ("visit_date", "Choose the date of the visits."),
            Audience.PROJECT_STATUS: ("project_status", "Choose a project status."),
            Audience.TAG: ("tag", "Choose a tag."),
        }.get(data.get("audience"))
        if needs and not data.get(needs[0]) and needs[0] not in self.errors:
            self.add_error(needs[0], needs[1])
        return data

    def choice(self) -> Choice:
        data = self.cleaned_data
        chosen = data["audience"]
        return Choice(
            audience=chosen,
            visit_date=data["visit_date"] if chosen == Audience.VISIT_ON else None,
            project_status=data["project_status"] if chosen == Audience.PROJECT_STATUS else "",
            tag=data["tag"] if chosen == Audience.TAG else None,
        )
