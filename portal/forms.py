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


class NameForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=120)


class ContactForm(forms.Form):
    """A new mobile number or email address; prefixed "phone" or "email" on the page."""

    value = forms.CharField(max_length=254)

    def __init__(self, *args, kind: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind or self.prefix
        field = self.fields["value"]
        if self.kind == "phone":
            field.label = "New mobile number"
            field.widget = forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"})
        else:
            field.label = "New email address"
            field.widget = forms.EmailInput(attrs={"autocomplete": "email"})

    def clean_value(self) -> str:
        kind, address = codes.parse_address(self.cleaned_data["value"])
        if kind != self.kind:
            wanted = "a mobile number" if self.kind == "phone" else "an email address"
            raise forms.ValidationError(f"Enter {wanted} here.")
        return address


class DeviceForm(forms.Form):
    device = forms.IntegerField(min_value=1)


class AssigneeForm(forms.Form):
    """The assignee control of a staff list row or the chat modal: a staff member's id, or
    nothing for "Unassigned". Whether that id is active staff is the action's to check."""

    assignee = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    # Which control sent it (the answer is that control again); without JavaScript, where to go.
    where = forms.ChoiceField(choices=[("row", "row"), ("chat", "chat")], required=False)
    row = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    next = forms.CharField(required=False, max_length=500)
