"""Checking what people attach (photos from the reply box, MMS, email) before it is stored.

A file is what its bytes say, not what its name or the sender's content type claims: the
type is read from the first bytes, must be one we accept (Attachment.TYPES) and agree with
the claim's family, and images must decode (a small thumbnail is made from them, which also
proves it). Pure functions of bytes: no storage, no database.

Decoding is the expensive part, and a small file can be a huge picture: a 381 KB PNG of
7000 x 7000 16-bit pixels took 560 MB and 6 s to decode. So the picture's size and pixel
format are read from its header first (Pillow's open is lazy), and a picture whose decoded
pixels would take more than MAX_DECODED_BYTES is refused before anything is decoded.
Callers that may still refuse the request for a cheaper reason check with decode=False and
call `decoded()` last. Photos are stored without their location and device metadata
(messaging.image_metadata).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError

from messaging.image_metadata import strip_metadata
from messaging.models import Attachment

THUMBNAIL_EDGE = 480
# A photo of more pixels than this is refused rather than decoded (decompression bombs).
MAX_PIXELS = 50_000_000
# ... and one whose decoding would hold more memory than this at its peak: 20 million RGB
# pixels (Pillow keeps each in 4 bytes), 10 million with transparency (shrinking those holds
# a second, premultiplied copy). A JPEG is decoded at the smallest scale its thumbnail needs,
# so a 48-megapixel photo takes a few MB.
MAX_DECODED_BYTES = 100 * 1024 * 1024


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
    # An image checked from its header (decode=False) whose thumbnail is still to be made.
    undecoded: bool = False


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
    *, name: str, content_type: str, data: bytes, staff_only: bool = False, decode: bool = True
) -> NewAttachment:
    """The file, checked and with its thumbnail; ValidationError saying why if refused.
    A file kept for staff only may be of any type (an email's spreadsheet): it is stored as
    bytes and only ever offered as a download. With decode False an image is checked from
    its header alone (type, size, the memory decoding it would take) and `decoded()` makes
    its thumbnail later."""
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
    width, height, shown = None, None, Attachment.TYPES[actual][1]
    if shown:
        width, height = _header_check(data, label)
    data = strip_metadata(data, actual)
    extension = Attachment.TYPES[actual][0]
    checked = NewAttachment(
        name=_clean_name(name) or f"attachment{extension}",
        content_type=actual,
        data=data,
        staff_only=staff_only,
        width=width,
        height=height,
        undecoded=shown,
    )
    return decoded(checked) if decode else checked


def decoded(attachment: NewAttachment) -> NewAttachment:
    """The attachment with its thumbnail made (the picture decoded, within the bounds its
    header was checked against); ValidationError if it cannot be read."""
    if not attachment.undecoded:
        return attachment
    thumbnail = _thumbnail(attachment.data, (attachment.name or "the file")[:80])
    return dataclasses.replace(attachment, thumbnail=thumbnail, undecoded=False)


def _clean_name(name: str) -> str:
    return "".join(c for c in (name or "") if c.isprintable() and c not in '/\\"').strip()[:200]


# Bytes per pixel as Pillow keeps each mode in memory (RGB takes 4, like RGBA).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
_TWO_BYTE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Modes Pillow shrinks well as they are; any other (palette, 1-bit, 16-bit) is converted to
# RGB before shrinking, which holds an RGB copy of the whole picture too.
_SHRUNK_AS_THEY_ARE = frozenset({"RGB", "RGBA", "RGBX", "L", "LA"})
# Pillow shrinks these through a premultiplied copy of the whole picture.
_PREMULTIPLIED_TO_SHRINK = frozenset({"RGBA", "LA"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _decoding_bytes(mode: str, pixels: int) -> int:
    """The memory making a thumbnail of `pixels` pixels in `mode` holds at its peak."""
    per_pixel = 1 if mode in _ONE_BYTE_MODES else 2 if mode in _TWO_BYTE_MODES else 4
    if mode not in _SHRUNK_AS_THEY_ARE:
        per_pixel += 4  # converted to RGB first
    elif mode in _PREMULTIPLIED_TO_SHRINK:
        per_pixel *= 2
    # The decoder's buffers and the shrinking's intermediate copy: a quarter more, measured
    # (tests/test_photo_limits.py).
    return pixels * per_pixel * 5 // 4


def _unreadable(label: str) -> ValidationError:
    return ValidationError(
        "%(name)s could not be read as a picture.", code="bad_image", params={"name": label}
    )


def _too_large(label: str, code: str) -> ValidationError:
    return ValidationError(
        "%(name)s is too large a picture to take; send a smaller copy of it.",
        code=code,
        params={"name": label},
    )


def _header_check(data: bytes, label: str) -> tuple[int, int]:
    """The picture's width and height, read from its header; refused if decoding it for
    its thumbnail would hold more than MAX_DECODED_BYTES of pixels. Nothing is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width < 1 or height < 1:
                raise _unreadable(label)
            if width * height > MAX_PIXELS:
                raise _too_large(label, "too_many_pixels")
            # What the thumbnail will decode: a JPEG at the smallest scale (1/2 .. 1/8) that
            # still covers the thumbnail; anything else whole.
            image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            decoded_width, decoded_height = image.size
            if _decoding_bytes(image.mode, decoded_width * decoded_height) > MAX_DECODED_BYTES:
                raise _too_large(label, "too_much_memory")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(label) from exc
    except Image.DecompressionBombError as exc:
        raise _too_large(label, "too_many_pixels") from exc
    return width, height


def _thumbnail(data: bytes, label: str) -> bytes:
    """A JPEG at most THUMBNAIL_EDGE on a side, turned as the photo's orientation says. The
    picture is shrunk before it is turned and converted, so its full-size pixels are held
    once (turning, converting, then shrinking held three full-size copies)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size[0] * image.size[1] > MAX_PIXELS:  # _header_check ran on these bytes
                raise _too_large(label, "too_many_pixels")
            orientation = image.getexif().get(0x0112, 1)
            image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))  # JPEG: decode small
            small = image if image.mode in _SHRUNK_AS_THEY_ARE else image.convert("RGB")
            small.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            small = small.convert("RGB")
            if orientation in _TRANSPOSE:
                small = small.transpose(_TRANSPOSE[orientation])
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(label) from exc
    except Image.DecompressionBombError as exc:
        raise _too_large(label, "too_many_pixels") from exc


def file_sha256(field_file) -> str:
    """The SHA-256 (hex) of a stored file, read in blocks: files can be large."""
    digest = hashlib.sha256()
    with field_file.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
