"""Pictures for the tests of what photos cost and carry: the issue's decompression bomb, a
phone photo with its location in it, and the peak memory of a process."""

from __future__ import annotations

import io
import re
import struct
import zlib
from functools import cache
from pathlib import Path

import pillow_heif
from PIL import Image

GPS_IFD = 0x8825
ORIENTATION, MAKE, MODEL = 0x0112, 0x010F, 0x0110


@cache
def png_bomb(width: int = 7000, height: int = 7000) -> bytes:
    """A PNG of width x height 16-bit RGBA pixels, all zero: 381 KB at 7000 x 7000 (issue 18
    item 3), 196 MB once Pillow holds its pixels."""
    row = bytes(1 + width * 8)  # filter byte, then 8 bytes a pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def phone_photo(fmt: str = "JPEG", *, size=(64, 48), orientation: int = 6) -> bytes:
    """A photo as a phone writes it: where it was taken, the phone's make and model, and an
    orientation (6: turn 90 degrees clockwise to view)."""
    image = Image.new("RGB", size, (200, 80, 40))
    for x in range(size[0] // 4):
        image.putpixel((x, 1), (0, 0, 255))  # a mark, so a turned picture is told apart
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Apple"
    exif[MODEL] = "iPhone 15 Pro"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (40.0, 26.0, 46.0), 3: "W", 4: (79.0, 58.0, 56.0)})
    out = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
        # HEIC turns the picture itself (its irot property) and keeps an XMP copy of the place.
        extra = {"xmp": XMP_WITH_LOCATION, "quality": -1}
        exif = exif.tobytes()
    image.save(out, fmt, exif=exif, **extra)
    return out.getvalue()


XMP_WITH_LOCATION = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="40,26.77N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def peak_rss_reset(pid: int | str = "self") -> None:
    """Start counting a process's peak memory (VmHWM) afresh."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int | str = "self") -> float:
    """The most memory (resident) the process has held since peak_rss_reset, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def rss_mb(pid: int | str = "self") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
