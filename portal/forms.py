from __future__ import annotations

from django import forms

from portal import codes


class EmailLoginForm(forms.Form):
    """/login/: an email address or a mobile number (read in the business's region)."""

    address = forms.CharField(
        label="Email or mobile number",
        max_length=254,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autofocus": True, "spellcheck": "false"}
        ),
    )
    # Which button: a code (by SMS for a phone, by email for an email) or an emailed link.
    method = forms.ChoiceField(
        choices=[("code", "code"), ("link", "link")], required=False, widget=forms.HiddenInput
    )
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_address(self) -> tuple[str, str]:
        return codes.parse_address(self.cleaned_data["address"])


class CodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code",
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "pattern": "[0-9 ]*",
            }
        ),
    )
    keep = forms.BooleanField(label="Keep me signed in on this device", required=False)


class MagicLinkForm(forms.Form):
    sesame = forms.CharField(widget=forms.HiddenInput, max_length=400)
    keep = forms.BooleanField(label="Keep me signed in on this device", required=False)
