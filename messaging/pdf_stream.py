"""A text PDF written front to back, one page at a time, so a transcript of any length is
sent while it is made and never held whole.

fpdf2 (crm_events/pdf.py, the invoices) keeps every page in memory until `output()`: fine for
a two-page invoice, not for a 100,000-entry thread (several thousand pages). A text-only
document needs little of PDF, so this writes it directly: the standard Helvetica fonts
(WinAnsiEncoding, nothing embedded), one compressed content stream per page, and the page
tree, cross-reference table and trailer at the end. What it keeps between pages is one byte
offset per object (two objects a page), about 60 bytes a page.

Glyph widths for line wrapping come from fpdf2's tables of the standard fonts.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator

from fpdf.fonts import CORE_FONTS_CHARWIDTHS

ENCODING = "windows-1252"
PAGE_WIDTH, PAGE_HEIGHT = 595.28, 841.89  # A4, in points
MARGIN = 48
FONTS = {
    "regular": ("F1", "Helvetica", "helvetica"),
    "bold": ("F2", "Helvetica-Bold", "helveticaB"),
}
# Objects 1-4 are fixed: catalog, page tree (written last, when its pages are known), fonts.
CATALOG, PAGES, FIRST_FONT = 1, 2, 3


def _winansi(text: str) -> bytes:
    # The standard fonts cover Windows-1252; anything else prints as "?", never an error.
    return text.encode(ENCODING, errors="replace")


def _escape(data: bytes) -> bytes:
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


# Words recur (names, "delivered", the same few hundred words): wrapping a long transcript
# measured the same ones hundreds of thousands of times.
@functools.lru_cache(maxsize=8192)
def text_width(text: str, *, font: str, size: float) -> float:
    widths = CORE_FONTS_CHARWIDTHS[FONTS[font][2]]
    return sum(widths.get(chr(b), 556) for b in _winansi(text)) * size / 1000


def wrap(text: str, *, font: str, size: float, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` (at spaces; a word wider than a line is
    cut), keeping its own line breaks. Widths are summed word by word, not re-measured."""
    space = text_width(" ", font=font, size=size)
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        line, line_width = "", 0.0
        for word in paragraph.split(" "):
            word_width = text_width(word, font=font, size=size)
            if line and line_width + space + word_width <= width:
                line, line_width = f"{line} {word}", line_width + space + word_width
                continue
            if not line and word_width <= width:
                line, line_width = word, word_width
                continue
            if line:
                lines.append(line)
            while word_width > width:
                cut = len(word)
                while cut > 1 and text_width(word[:cut], font=font, size=size) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                word_width = text_width(word, font=font, size=size)
            line, line_width = word, word_width
        lines.append(line)
    return lines


class PdfWriter:
    """Yields a PDF's bytes as it goes: `start()`, `page(...)` for each page, `finish()`."""

    def __init__(self, *, title: str, author: str) -> None:
        self.title = title
        self.author = author
        self.position = 0
        self.offsets: dict[int, int] = {}
        self.next_id = FIRST_FONT + len(FONTS)
        self.page_ids: list[int] = []

    def _object(self, number: int, body: bytes) -> bytes:
        self.offsets[number] = self.position
        data = b"%d 0 obj\n" % number + body + b"\nendobj\n"
        self.position += len(data)
        return data

    def _emit(self, data: bytes) -> bytes:
        self.position += len(data)
        return data

    def start(self) -> bytes:
        out = [self._emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")]
        for index, (_, base, _) in enumerate(FONTS.values()):
            out.append(
                self._object(
                    FIRST_FONT + index,
                    b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
                    % base.encode(),
                )
            )
        return b"".join(out)

    def page(self, operations: bytes) -> bytes:
        content_id, page_id = self.next_id, self.next_id + 1
        self.next_id += 2
        self.page_ids.append(page_id)
        stream = zlib.compress(operations, 6)
        fonts = b" ".join(
            b"/%s %d 0 R" % (name.encode(), FIRST_FONT + i)
            for i, (name, _, _) in enumerate(FONTS.values())
        )
        return self._object(
            content_id,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream",
        ) + self._object(
            page_id,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] "
            b"/Resources << /Font << %s >> >> /Contents %d 0 R >>"
            % (PAGES, PAGE_WIDTH, PAGE_HEIGHT, fonts, content_id),
        )

    def finish(self) -> bytes:
        kids = b" ".join(b"%d 0 R" % page for page in self.page_ids)
        out = [
            self._object(
                PAGES, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self.page_ids))
            ),
            self._object(CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % PAGES),
        ]
        info_id = self.next_id
        out.append(
            self._object(
                info_id,
                b"<< /Title (%s) /Author (%s) /Producer (Porchlight) >>"
                % (_escape(_winansi(self.title)), _escape(_winansi(self.author))),
            )
        )
        xref_at = self.position
        rows = [b"xref\n0 %d\n" % (info_id + 1), b"0000000000 65535 f \n"]
        rows += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, info_id + 1)]
        out.append(b"".join(rows))
        out.append(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (info_id + 1, CATALOG, info_id, xref_at)
        )
        return b"".join(out)


class PageComposer:
    """Lines of text laid top to bottom; `add` returns the bytes of any page it filled."""

    def __init__(self, writer: PdfWriter, *, footer: str = "") -> None:
        self.writer = writer
        self.footer = footer
        self.number = 0
        self.operations: list[bytes] = []
        self.y = PAGE_HEIGHT - MARGIN

    def _flush(self) -> bytes:
        self.number += 1
        footer = f"{self.footer} Page {self.number}".strip()
        self.operations.append(self._text_op(footer, x=MARGIN, y=MARGIN / 2, font="regular",
                                             size=8, grey=0.4))  # fmt: skip
        data = self.writer.page(b"".join(self.operations))
        self.operations = []
        self.y = PAGE_HEIGHT - MARGIN
        return data

    @staticmethod
    def _text_op(text: str, *, x: float, y: float, font: str, size: float, grey: float) -> bytes:
        return b"BT %.2f g /%s %.1f Tf %.2f %.2f Td (%s) Tj ET\n" % (
            grey, FONTS[font][0].encode(), size, x, y, _escape(_winansi(text)),
        )  # fmt: skip

    def add(
        self,
        text: str,
        *,
        font: str = "regular",
        size: float = 10,
        indent: float = 0,
        grey: float = 0,
        space_before: float = 0,
        keep_lines: int = 1,
    ) -> Iterator[bytes]:
        """Lay out `text`, wrapped; keep its first `keep_lines` lines on one page."""
        leading = size * 1.3
        lines = wrap(text, font=font, size=size, width=PAGE_WIDTH - 2 * MARGIN - indent)
        if self.y - space_before - leading * min(keep_lines, len(lines)) < MARGIN:
            yield self._flush()
        elif self.y < PAGE_HEIGHT - MARGIN:
            self.y -= space_before
        for line in lines:
            if self.y - leading < MARGIN:
                yield self._flush()
            self.y -= leading
            self.operations.append(
                self._text_op(line, x=MARGIN + indent, y=self.y, font=font, size=size, grey=grey)
            )

    def close(self) -> Iterator[bytes]:
        if self.operations or self.number == 0:
            yield self._flush()
