from __future__ import annotations

from django import forms


class EmailLoginForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class MagicLinkForm(forms.Form):
    sesame = forms.CharField(widget=forms.HiddenInput, max_length=400)
