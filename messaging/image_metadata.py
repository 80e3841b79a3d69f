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
- HEIC: the EXIF and XMP items' bytes are overwritten in place, the EXIF one with an empty
  EXIF block of the same length, the XMP one with spaces (HEIC keeps its orientation in the
  picture's own properties, not in EXIF).
- GIF has no EXIF. PDFs are stored as sent.

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
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        struct.error,
        Image.DecompressionBombError,
    ):
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


# -- HEIC (ISO base media file format) -------------------------------------------------------


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of each box between start and end."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError("a box runs past its parent")
        yield kind, at + header, at + size
        at += size


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big") if size else 0


def _metadata_items(data: bytes, start: int, end: int) -> set[int]:
    """The ids of the EXIF and XMP items an iinf box lists."""
    version = data[start]
    count_size = 2 if version == 0 else 4
    found = set()
    for kind, at, box_end in _boxes(data, start + 4 + count_size, end):
        if kind != b"infe" or data[at] < 2:
            continue
        id_size = 2 if data[at] == 2 else 4
        item_id = _uint(data, at + 4, id_size)
        item_type = data[at + 4 + id_size + 2 : at + 4 + id_size + 6]
        # A mime item names itself, then its content type, each ending in NUL.
        names = data[at + 4 + id_size + 6 : box_end].split(b"\0")
        content_type = names[1] if len(names) > 1 else b""
        if item_type == b"Exif" or (item_type == b"mime" and b"rdf+xml" in content_type):
            found.add(item_id)
    return found


def _extents(data: bytes, start: int, end: int, idat: int | None):
    """(item id, file offset, length) of every extent an iloc box lists."""
    version = data[start]
    at = start + 4
    offset_size, length_size = data[at] >> 4, data[at] & 15
    base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15 if version in (1, 2) else 0)
    at += 2
    count_size = 2 if version < 2 else 4
    count = _uint(data, at, count_size)
    at += count_size
    for _ in range(count):
        if at >= end:  # a count no box this size can hold
            raise ValueError("iloc runs past its box")
        item_id = _uint(data, at, count_size)
        at += count_size
        method = 0
        if version in (1, 2):
            method = _uint(data, at, 2) & 15
            at += 2
        at += 2  # data_reference_index
        base = _uint(data, at, base_size)
        at += base_size
        extents = _uint(data, at, 2)
        at += 2
        if at + extents * (index_size + offset_size + length_size) > end:
            raise ValueError("iloc runs past its box")
        for _ in range(extents):
            at += index_size
            offset = _uint(data, at, offset_size)
            length = _uint(data, at + offset_size, length_size)
            at += offset_size + length_size
            if at > end:
                raise ValueError("iloc runs past its box")
            if method == 0:
                yield item_id, base + offset, length
            elif method == 1 and idat is not None:
                yield item_id, idat + base + offset, length


def _strip_heic(data: bytes, orientation: int) -> bytes:
    if data[4:8] != b"ftyp":
        raise ValueError("not an ISO media file")
    meta = next((b for b in _boxes(data, 0, len(data)) if b[0] == b"meta"), None)
    if meta is None:
        return data
    children = {kind: (at, end) for kind, at, end in _boxes(data, meta[1] + 4, meta[2])}
    if b"iinf" not in children or b"iloc" not in children:
        return data
    wanted = _metadata_items(data, *children[b"iinf"])
    idat = children[b"idat"][0] if b"idat" in children else None
    out = bytearray(data)
    empty_exif = b"\0\0\0\0" + b"MM\0*\0\0\0\x08" + b"\0\0" + b"\0\0\0\0"
    for item_id, offset, length in _extents(data, *children[b"iloc"], idat):
        if item_id not in wanted or offset + length > len(data):
            continue
        is_exif = data[offset + 4 : offset + 10] == b"Exif\0\0" or data[
            offset + 4 : offset + 6
        ] in (b"MM", b"II")
        if is_exif and length >= len(empty_exif):
            filler = empty_exif + bytes(length - len(empty_exif))
        else:
            filler = b" " * length
        out[offset : offset + length] = filler
    return bytes(out)


_STRIPPERS = {
    "image/jpeg": _strip_jpeg,
    "image/png": _strip_png,
    "image/webp": _strip_webp,
    "image/heic": _strip_heic,
}
