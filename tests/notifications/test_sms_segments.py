"""SMS segment counting, checked against the examples in Twilio's documentation on
segments and encodings (160/153 GSM-7 septets, 70/67 UCS-2 code units)."""

from __future__ import annotations

import pytest

from notifications.outbound.segments import GSM7, UCS2, count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, GSM7, 1),
        ("a" * 161, GSM7, 2),
        ("a" * 306, GSM7, 2),
        ("a" * 307, GSM7, 3),
        ("é" * 160, GSM7, 1),  # é is in the GSM-7 alphabet
        ("ú" + "a" * 69, UCS2, 1),  # ú is not: the whole text goes UCS-2
        ("ú" + "a" * 70, UCS2, 2),
        ("a" * 134, GSM7, 1),
        ("😀" * 35, UCS2, 1),  # an emoji is two UTF-16 code units
        ("😀" * 36, UCS2, 2),
        ("“quoted”", UCS2, 1),  # curly quotes are not GSM-7 (no smart encoding)
    ],
)
def test_it_counts_segments_like_twilio(text, encoding, segments):
    result = count_segments(text)
    assert (result.encoding, result.count) == (encoding, segments)


def test_an_extension_character_takes_two_septets():
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).count == 1
    assert count_segments("€" * 81).count == 2


def test_a_segment_never_ends_inside_an_escape_pair():
    # 152 plain septets then "€": the pair does not fit the first segment's 153 whole, so it
    # starts the second, and the text needs 2 segments where a naive 154/153 would also say 2;
    # at 305 + "€" a naive count (307 septets → 3) agrees, but 152 + "€" + 152 does not.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text).units == 306
    assert count_segments(text).count == 3


def test_a_segment_never_splits_a_surrogate_pair():
    text = "a" * 66 + "😀" + "a" * 66  # 134 code units: 2 segments naively, 3 whole
    assert count_segments(text).units == 134
    assert count_segments(text).count == 3


def test_an_empty_text_takes_no_segment():
    assert count_segments("").count == 0
