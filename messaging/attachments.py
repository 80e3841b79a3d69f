"""Checking what people attach (photos from the reply box, MMS, email) before it is stored.

A file is what its bytes say, not what its name or the sender's content type claims: the
type is read from the first bytes, must be one we accept (Attachment.TYPES) and agree with
the claim's family, and images must decode (a small thumbnail is made from them, which also
proves it). Pure functions of bytes: no storage, no database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, ImageOps, UnidentifiedImageError

from messaging.models import Attachment

THUMBNAIL_EDGE = 480
# A photo of more pixels than this is refused rather than decoded (decompression bombs).
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class NewAttachment:
    """A file to attach to an entry, checked (`check_attachment`)."""

    name: str
    content_type: str
    data: bytes
    staff_only: bool = False
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes themselves announce, for the types we accept."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"mif1",
        b"msf1",
    ):
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _family(content_type: str) -> str:
    return (content_type or "").split(";")[0].strip().lower().split("/")[0]


def check_attachment(
    *, name: str, content_type: str, data: bytes, staff_only: bool = False
) -> NewAttachment:
    """The file, checked and with its thumbnail; ValidationError saying why if refused.
    A file kept for staff only may be of any type (an email's spreadsheet): it is stored as
    bytes and only ever offered as a download."""
    limit = settings.ATTACHMENT_MAX_BYTES
    label = (name or "the file")[:80]
    if len(data) > limit:
        raise ValidationError(
            "%(name)s is larger than %(mb)s MB.",
            code="too_big",
            params={"name": label, "mb": limit // (1024 * 1024)},
        )
    if not data:
        raise ValidationError("%(name)s is empty.", code="empty_file", params={"name": label})
    actual = sniff(data)
    if actual is None and staff_only:
        return NewAttachment(
            name=_clean_name(name) or "attachment",
            content_type="application/octet-stream",
            data=data,
            staff_only=True,
        )
    if actual is None:
        raise ValidationError(
            "%(name)s is not a photo (JPEG, PNG, GIF, WebP, HEIC) or a PDF.",
            code="file_type",
            params={"name": label},
        )
    claimed = _family(content_type)
    if claimed and claimed not in (_family(actual), "application") and claimed != "binary":
        raise ValidationError(
            "%(name)s says it is %(claimed)s but is %(actual)s.",
            code="file_type_mismatch",
            params={"name": label, "claimed": content_type[:60], "actual": actual},
        )
    thumbnail, width, height = None, None, None
    if Attachment.TYPES[actual][1]:
        thumbnail, width, height = _thumbnail(data, label)
    extension = Attachment.TYPES[actual][0]
    return NewAttachment(
        name=_clean_name(name) or f"attachment{extension}",
        content_type=actual,
        data=data,
        staff_only=staff_only,
        thumbnail=thumbnail,
        width=width,
        height=height,
    )


def _clean_name(name: str) -> str:
    return "".join(c for c in (name or "") if c.isprintable() and c not in '/\\"').strip()[:200]


def _thumbnail(data: bytes, label: str) -> tuple[bytes, int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValidationError(
                    "%(name)s is too large a picture.",
                    code="too_many_pixels",
                    params={"name": label},
                )
            image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))  # JPEG: decode small
            small = ImageOps.exif_transpose(image).convert("RGB")
            small.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue(), width, height
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            "%(name)s could not be read as a picture.", code="bad_image", params={"name": label}
        ) from exc
