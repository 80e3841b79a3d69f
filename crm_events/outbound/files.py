"""Links the CRM fetches a customer's photos by (`request.created`'s `photos[].url`).

An event's body is fixed when it is recorded and may be retried for CRM_OUTBOUND_RETRY_DAYS,
so its links last that long and a week more: signed (the attachment's id, with Django's
TimestampSigner and a salt of their own), absolute, and working without a session. Only a
file both sides see is ever served by one.
"""

from __future__ import annotations

from django.conf import settings
from django.core.signing import BadSignature, TimestampSigner
from django.http import Http404
from django.urls import reverse

from messaging.models import Attachment, Entry

_SALT = "crm_events.outbound.photo"


def max_age_seconds() -> int:
    return (settings.CRM_OUTBOUND_RETRY_DAYS + 7) * 24 * 3600


def photo_url(attachment: Attachment) -> str:
    token = TimestampSigner(salt=_SALT).sign(str(attachment.pk))
    return f"{settings.SITE_URL}{reverse('crm_photo', args=[token])}"


def photo_for_token(token: str) -> Attachment:
    """The attachment a link names, or Http404 (forged, expired, or not a shared file)."""
    try:
        pk = TimestampSigner(salt=_SALT).unsign(token, max_age=max_age_seconds())
    except BadSignature:
        raise Http404 from None
    attachment = (
        Attachment.objects.filter(pk=int(pk), staff_only=False)
        .exclude(entry__kind=Entry.Kind.INTERNAL_NOTE)
        .first()
    )
    if attachment is None:
        raise Http404
    return attachment
