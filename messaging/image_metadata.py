"""Location and device metadata taken out of the photos we store, without re-encoding them.

A phone writes where a photo was taken (EXIF GPS), the phone's make, model and serial, and
often an XMP or IPTC copy of the same into every photo. Stored as sent, a staff member's
photo told the customer (and anyone holding its shared link) where that phone had been.
The image data itself is kept byte for byte: only the metadata containers are dropped, and
the one tag that changes how the picture looks, its orientation, is written back alone.

- JPEG: APP1 (EXIF, XMP), APP3-APP13 (IPTC, maker data), APP15 and comments are dropped;
  JFIF (APP0), the ICC colour profile (APP2 "ICC_PROFILE") and Adobe's colour transform
  (APP14) are kept; anything after the image's end (the extra pictures of a multi-picture
  file, with metadata of their own) is cut.
- PNG: eXIf, tEXt, zTXt, iTXt (where XMP lives) and tIME chunks are dropped.
- WebP: EXIF and XMP chunks are dropped and the header's flags say so.
- GIF has no EXIF; HEIC is stored as sent (it is offered as a download, never shown, and
  phones send JPEG to a web form). PDFs are stored as sent.

A file whose structure cannot be walked is returned unchanged: the checks before this one
(messaging.attachments) have already read it as the picture it claims to be.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, UnidentifiedImageError

ORIENTATION = 0x0112


def strip_metadata(data: bytes, content_type: str) -> bytes:
    """`data` without location or device metadata, its orientation kept."""
    strip = _STRIPPERS.get(content_type)
    if strip is None:
        return data
    try:
        return strip(data, _orientation(data))
    except (ValueError, IndexError, struct.error):
        return data


def _orientation(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as image:  # the header only; nothing is decoded
            value = image.getexif().get(ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_with_orientation(orientation: int) -> bytes:
    """An EXIF block ("Exif\\0\\0" and TIFF data) holding the orientation and nothing else."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


# -- JPEG ------------------------------------------------------------------------------------

_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE
_APP0, _APP2, _APP14 = 0xE0, 0xE2, 0xEE


def _keep_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == _COM:
        return False
    if 0xE0 <= marker <= 0xEF:  # APPn
        return marker in (_APP0, _APP14) or (
            marker == _APP2 and payload.startswith(b"ICC_PROFILE\0")
        )
    return True  # tables, frame headers, restart intervals: the picture itself


def _strip_jpeg(data: bytes, orientation: int) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out = bytearray(b"\xff\xd8")
    if orientation != 1:
        exif = _exif_with_orientation(orientation)
        out += b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    at = 2
    while True:
        if data[at] != 0xFF:
            raise ValueError("lost in the JPEG's segments")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == _SOS:
            # The image data, up to and including its end marker (0xFF bytes inside it are
            # stuffed, so the first FFD9 is the end); whatever follows is not this picture.
            end = data.find(b"\xff\xd9", at)
            if end < 0:
                raise ValueError("no end of image")
            out += data[at : end + 2]
            return bytes(out)
        if marker == _EOI:
            raise ValueError("an image with no data")
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        segment = data[at : at + 2 + length]
        if len(segment) != 2 + length or length < 2:
            raise ValueError("a truncated segment")
        if _keep_jpeg_segment(marker, segment[4:]):
            out += segment
        at += 2 + length


# -- PNG -------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DROPPED = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _strip_png(data: bytes, orientation: int) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out = bytearray(_PNG_SIGNATURE)
    at = len(_PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        chunk = data[at : at + 12 + length]
        if len(chunk) != 12 + length:
            raise ValueError("a truncated chunk")
        if kind == b"IDAT" and orientation != 1:
            # eXIf must come before the image data.
            out += _png_chunk(b"eXIf", _exif_with_orientation(orientation)[6:])
            orientation = 1
        if kind not in _PNG_DROPPED:
            out += chunk
        at += 12 + length
        if kind == b"IEND":
            break
    return bytes(out)


# -- WebP ------------------------------------------------------------------------------------

_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _strip_webp(data: bytes, orientation: int) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    chunks = []
    at = 12
    while at + 8 <= len(data):
        kind = data[at : at + 4]
        (size,) = struct.unpack("<I", data[at + 4 : at + 8])
        payload = data[at + 8 : at + 8 + size]
        if len(payload) != size:
            raise ValueError("a truncated chunk")
        chunks.append([kind, payload])
        at += 8 + size + (size & 1)
    chunks = [c for c in chunks if c[0] not in (b"EXIF", b"XMP ")]
    if chunks and chunks[0][0] == b"VP8X":
        flags = chunks[0][1][0] & ~(_VP8X_EXIF | _VP8X_XMP)
        if orientation != 1:
            flags |= _VP8X_EXIF
            chunks.append([b"EXIF", _exif_with_orientation(orientation)[6:]])
        chunks[0][1] = bytes([flags]) + chunks[0][1][1:]
    body = b"".join(
        kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")
        for kind, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


_STRIPPERS = {"image/jpeg": _strip_jpeg, "image/png": _strip_png, "image/webp": _strip_webp}
