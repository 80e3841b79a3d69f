from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from messaging.actions import clean_body
from messaging.attachments import NewAttachment, check_attachment, decoded


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Photos (or PDFs) from the reply box, checked as files (messaging.attachments) from
    their headers; the form decodes them only once everything else about it is valid."""

    widget = MultipleFileInput
    # None: ATTACHMENTS_PER_MESSAGE. A form asking for photos only (a work request) says so.
    max_files: int | None = None
    too_many = "Attach at most {limit} files to one message."
    photos_only = False

    def clean(self, data, initial=None) -> list[NewAttachment]:
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        limit = self.max_files or settings.ATTACHMENTS_PER_MESSAGE
        if len(files) > limit:
            raise ValidationError(self.too_many.format(limit=limit))
        checked, errors = [], []
        for upload in files:
            if upload.size > settings.ATTACHMENT_MAX_BYTES:
                mb = settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)
                errors.append(ValidationError(f"{upload.name[:80]} is larger than {mb} MB."))
                continue
            try:
                checked.append(
                    check_attachment(
                        name=upload.name,
                        content_type=upload.content_type,
                        data=upload.read(),
                        decode=False,
                    )
                )
            except ValidationError as error:
                errors.append(error)
                continue
            if self.photos_only and not checked[-1].content_type.startswith("image/"):
                errors.append(ValidationError(f"{upload.name[:80]} is not a photo."))
        if errors:
            raise ValidationError(errors)
        return checked


def new_send_key() -> str:
    """The key a reply box sends its next message with. Made here only: the page renders it,
    and each successful send answers with the next one, so a double click or a retried
    request carries the same key and makes one message."""
    return uuid.uuid4().hex


class ReplyForm(forms.Form):
    # Where the form's errors are shown; also the prefix of its fields' ids.
    error_id = "reply-error"

    body = forms.CharField(
        label="Message",
        required=False,  # clean_body gives the friendlier message
        strip=False,
        max_length=settings.MESSAGE_MAX_LENGTH * 2,
        widget=forms.Textarea(
            attrs={
                "placeholder": "Type a reply…",
                "rows": 1,
                # No maxlength: the browser would cut a pasted text silently. The counter
                # below the box says what is left, and the server refuses what is over.
                "data-max-length": settings.MESSAGE_MAX_LENGTH,
                "autocomplete": "off",
                "enterkeyhint": "send",
            }
        ),
    )
    key = forms.CharField(max_length=64, widget=forms.HiddenInput)
    photos = PhotosField(
        label="Add photos",
        required=False,
        # Phones offer the camera or the photo library for image/*.
        widget=MultipleFileInput(attrs={"accept": "image/*,application/pdf", "data-photos": ""}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", self.error_id.removesuffix("error") + "%s")
        super().__init__(*args, **kwargs)
        self.fields["body"].widget.attrs["aria-describedby"] = f"{self.error_id} {self.count_id}"

    @property
    def count_id(self) -> str:
        return self.error_id.removesuffix("error") + "count"

    @classmethod
    def blank(cls) -> ReplyForm:
        """An empty form holding a fresh send key."""
        return cls(initial={"key": new_send_key()})

    def clean(self):
        data = super().clean()
        if "body" in data and not self.has_error("photos"):
            try:
                # A photo may go without words; without a photo, words are needed.
                data["body"] = clean_body(data["body"], may_be_empty=bool(data.get("photos")))
            except ValidationError as error:
                self.add_error("body", error)
        if data.get("photos") and not self.errors:
            # Decoding is the costly check: last, once nothing cheaper refuses the message.
            try:
                data["photos"] = [decoded(photo) for photo in data["photos"]]
            except ValidationError as error:
                self.add_error("photos", error)
        return data

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if not key.replace("-", "").isalnum():
            raise ValidationError("That send key is malformed; reload the page.")
        return key


class StaffReplyForm(ReplyForm):
    error_id = "staff-reply-error"

    internal_note = forms.BooleanField(
        required=False,
        label="Internal note (staff only)",
        widget=forms.CheckboxInput(attrs={"data-note-toggle": ""}),
    )
    urgent = forms.BooleanField(required=False, label="Urgent")


class EntriesPageForm(forms.Form):
    before = forms.IntegerField(min_value=1, required=False)
    after = forms.IntegerField(min_value=0, required=False)
    at = forms.IntegerField(min_value=1, required=False)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)


class TranscriptForm(forms.Form):
    """A transcript's options: up to which entry (default: the last), and for staff whether
    internal notes and call transcripts are in it (default: yes)."""

    up_to = forms.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    include_staff_only = forms.TypedChoiceField(
        choices=[("1", "yes"), ("0", "no")], coerce=lambda value: value == "1", required=False,
        empty_value=True,
    )  # fmt: skip

    def reason(self) -> str:
        return " ".join(f"{name}: {' '.join(errors)}" for name, errors in self.errors.items())
