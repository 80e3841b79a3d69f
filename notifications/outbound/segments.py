"""How many SMS segments a text takes: the GSM 03.38 rules Twilio bills by.

A text all in the GSM-7 alphabet is encoded in 7-bit septets: 160 fit one message; longer
texts are split into segments of 153 (each segment gives 7 septets to its concatenation
header). Characters of the extension table (€ [ ] { } \\ ~ ^ | and form feed) take two
septets, an escape and the character, and a segment never ends between the two. One character
outside the alphabet (an emoji, a curly quote, “ü” is in it but “ú” is not) turns the whole text
into UCS-2: UTF-16 code units, 70 in one message, 67 per segment, never splitting a surrogate
pair. (Twilio's "smart encoding", which swaps curly quotes for straight ones, is off by default
and not modelled: the count here is the one without it.)
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7, UCS2 = "GSM-7", "UCS-2"
# (units in a single message, units per segment of a longer one)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Segments:
    encoding: str
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _units(text: str, encoding: str) -> list[int]:
    """How many units each character takes; every character stays whole in one segment."""
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_segments(text: str) -> Segments:
    encoding = GSM7 if is_gsm7(text) else UCS2
    sizes = _units(text, encoding)
    total = sum(sizes)
    single, per_segment = LIMITS[encoding]
    if total == 0:
        return Segments(encoding, 0, 0)
    if total <= single:
        return Segments(encoding, 1, total)
    count, room = 1, per_segment
    for size in sizes:
        if size > room:  # this character starts the next segment
            count, room = count + 1, per_segment
        room -= size
    return Segments(encoding, count, total)
