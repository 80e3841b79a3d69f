from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from messaging.actions import clean_body


class ReplyForm(forms.Form):
    body = forms.CharField(
        required=False,  # clean_body gives the friendlier message
        strip=False,
        max_length=settings.MESSAGE_MAX_LENGTH * 2,
        widget=forms.Textarea(
            attrs={
                "placeholder": "Type a reply…",
                "rows": 1,
                "aria-label": "Message",
                "maxlength": settings.MESSAGE_MAX_LENGTH,
                "autocomplete": "off",
            }
        ),
    )
    # Made by the page (a UUID) so a double click or a retried request makes one message.
    key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean_body(self) -> str:
        return clean_body(self.cleaned_data.get("body", ""))

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not key.replace("-", "").isalnum():
            raise ValidationError("That send key is malformed; reload the page.")
        return key


class StaffReplyForm(ReplyForm):
    internal_note = forms.BooleanField(required=False, label="Internal note (staff only)")
    urgent = forms.BooleanField(required=False, label="Urgent")


class EntriesPageForm(forms.Form):
    before = forms.IntegerField(min_value=1, required=False)
    after = forms.IntegerField(min_value=0, required=False)
    at = forms.IntegerField(min_value=1, required=False)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)
