"""What a person newly wrote in an email reply: the quoted history, reply headers, signatures
and device taglines taken away. Pure functions of the body: no models, no network.

`visible_reply` reads a plain-text body line by line. Cheap string tests made once per line
decide which lines need a closer look (a possible header, separator, Outlook field, tagline
or signature); runs of other lines are kept in one step. The patterns tried on the lines
that need a look are anchored, run on at most three joined lines of bounded length, and
have no nested quantifiers, so the cost grows with the body's length and nothing else.

`html_to_text` turns an HTML-only body into text that `visible_reply` understands.

Measured on a corpus of public reply fixtures: see docs/inbound-email-text.md.
"""

from __future__ import annotations

import re
from itertools import compress

from lxml import etree


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


# -- Reply headers ("On <date>, <name> wrote:") ------------------------------------------------

# A header wraps over at most three lines (Gmail and Apple Mail wrap long ones), and none we
# have seen is longer than this; longer lines are never tried, which bounds the patterns.
_MAX_HEADER_LINES = 3
_MAX_HEADER_LENGTH = 400

# The verb a header ends with, in the languages we expect and a few neighbours'. Chinese,
# Japanese and Korean write it straight after the date.
_VERB_ENDINGS = _words(
    "wrote|writes|écrit|schrieb|escribió|scritto|scrisse|schreef|escreveu|skrev|napisał(a)|"
    "napisała|napisał|napisal|написал(а)|написала|написал|пишет|kirjoitti|napsal|napísal|"
    "yazdı|írta|έγραψε|scris|写道|寫道|のメール|작성"
)
_VERB_TAIL = max(map(len, _VERB_ENDINGS)) + 2
# German, Dutch and Scandinavian Gmail put the date after the verb: "Ann <…> schrieb am
# Mo., 1. Jan. 2024 um 10:00 Uhr:"; Outlook for Mac writes "Ann <…> skrev den …:".
_VERB_THEN_DATE = _words(" schrieb am | schreef op | skrev den | skrev följande| a écrit le ")
# The word a header starts with when it starts with its date: "On", "Le", "Am", "El", …. Only
# then may the colon after the verb be missing (Zoho and others drop it).
_LEADS = re.compile(
    r"(?:on|le|am|el|il|in\s+data|op|em|den|d\.|dne|w\s+dniu|dnia|в|el\s+día)\s", re.IGNORECASE
)
_BRACKETED_ADDRESS = re.compile(r"[<(\[](?:mailto:)?[^\s<>()\[\]@]+@[^\s<>()\[\]@]+[>)\]]")
_ADDRESS = re.compile(r"@[^\s<>()\[\]@]+\.[^\s<>()\[\]@]")
_TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_DIGIT = re.compile(r"\d")
_DATE_OR_ADDRESS_HINT = re.compile(r"[\d@]")
_WS = re.compile(r"\s+")

# -- Outlook's header block ("From: … / Sent: … / To: … / Subject: …") ---------------------

_FROM_LABELS = frozenset(
    _words(
        "from|de|von|van|da|från|fra|od|от|kimden|feladó|lähettäjä|odesílatel|发件人|寄件者|"
        "寄件人|差出人|보낸 사람|mittente|remetente|expéditeur|afzender"
    )
)
_OTHER_LABELS = frozenset(
    _words(
        "sent|date|to|cc|bcc|subject|reply-to|envoyé|à|objet|copie à|message du|gesendet|"
        "datum|an|betreff|kopie|enviado|enviada|enviada em|enviado el|para|asunto|fecha|"
        "inviato|data|a|oggetto|verzonden|aan|onderwerp|skickat|till|ämne|kopia|sendt|til|emne|"
        "dato|wysłano|wysłane|do|temat|отправлено|кому|тема|дата|копия|发送时间|发送日期|日期|"
        "收件人|抄送|主题|主旨|送信日時|日付|宛先|件名|gönderildi|kime|konu|tarih|lähetetty|"
        "vastaanottaja|aihe|päivämäärä|odesláno|komu|předmět|assunto|sujet|destinataire"
    )
)
_MAX_LABEL_LENGTH = 24
# "From:" is the first or second line of its block (a date or "Message du" may come first),
# and another field follows within a few lines (a long name or address wraps).
_FROM_WITHIN = 2
_NEXT_LABEL_WITHIN = 4

# -- Separators, signatures, taglines ------------------------------------------------------

# "-----Original Message-----", "---------- Forwarded message ---------" and "---- On …
# wrote ----" are text framed by dashes, in any language; these are the same without dashes,
# and Apple's "Begin forwarded message:".
_SEPARATORS = frozenset(
    _words(
        "original message|ursprüngliche nachricht|message d'origine|mensaje original|"
        "messaggio originale|oorspronkelijk bericht|mensagem original|ursprungligt meddelande|"
        "oprindelig meddelelse|opprinnelig melding|wiadomość oryginalna|oryginalna wiadomość|"
        "исходное сообщение|原始邮件|原始郵件|元のメッセージ|forwarded message|"
        "weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|"
        "doorgestuurd bericht|mensagem encaminhada|vidarebefordrat meddelande|"
        "wiadomość przekazana|пересылаемое сообщение|转发的邮件|轉寄的郵件|転送されたメッセージ|"
        "begin forwarded message|anfang der weitergeleiteten nachricht|"
        "début du message réexpédié|début du message transféré|inicio del mensaje reenviado|"
        "inizio messaggio inoltrato|begin doorgestuurd bericht|"
        "início da mensagem reencaminhada|início da mensagem encaminhada|vidarebefordrat mejl|"
        "początek przekazywanej wiadomości|начало переадресованного сообщения|以下是转发的邮件"
    )
)
_SEPARATOR_MAX_LENGTH = max(map(len, _SEPARATORS)) + 4
_SEPARATOR_PREFIXES = frozenset(phrase[:3] for phrase in _SEPARATORS)

# A device's tagline, alone on its line, once a trailing link ("<https://aka.ms/…>") is set
# aside. The app's name is short, and ends no sentence: "Sent from my desk, it is easier than
# from my phone." is the person's own.
_APP = r"[^.!?]{1,50}?\.?"
_TAGLINE = re.compile(
    r"(?:"
    rf"sent\s+(?:from|with|via|using|by)\s+{_APP}"
    rf"|(?:get|download)\s+outlook\s+for\s+{_APP}"
    rf"|envoyé\s+(?:de|depuis|à\s+partir\s+de|avec)\s+{_APP}"
    rf"|(?:télécharger|obtenir)\s+outlook\s+pour\s+{_APP}"
    rf"|von\s+meinem\s+{_APP}\s+gesendet"
    rf"|gesendet\s+(?:von|mit|vom|via)\s+{_APP}"
    rf"|outlook\s+für\s+\S+\s+herunterladen|holen\s+sie\s+sich\s+outlook\s+für\s+{_APP}"
    rf"|enviad[oa]\s+(?:desde|con|de|do|da|pelo|pela|via)\s+{_APP}"
    rf"|(?:obtener|descargar|baixe|obtenha)\s+(?:o\s+)?outlook\s+para\s+{_APP}"
    rf"|inviato\s+(?:da|dal|dalla|con|tramite)\s+{_APP}"
    rf"|scarica\s+outlook\s+per\s+{_APP}"
    rf"|(?:verstuurd|verzonden)\s+(?:vanaf|met|van|via)\s+{_APP}"
    r"|outlook\s+voor\s+\S+\s+downloaden"
    rf"|skickat\s+från\s+{_APP}|hämta\s+outlook\s+för\s+{_APP}"
    rf"|sendt\s+fra\s+{_APP}"
    rf"|wysłan[eo]\s+(?:z|ze|przy\s+użyciu)\s+{_APP}|pobierz\s+outlook\s+{_APP}"
    rf"|отправлено\s+(?:с|из|со|через)\s+{_APP}"
    rf"|odesláno\s+z\s+{_APP}|lähetetty\s+{_APP}|{_APP}\s+gönderildi"
    r"|.{1,30}から送信|(?:发自|發自|来自|來自)我的.{1,30}|从我的.{1,30}发送"
    r")$",
    re.IGNORECASE,
)
_MAX_MARKER_LENGTH = 200
_TAGLINE_MAX_WORDS = 10
# Every tagline above starts with one of these words, ends with one of these endings, or is
# Chinese ("发自我的iPhone"); other lines are not tried.
_TAGLINE_FIRST_WORDS = frozenset(
    _words(
        "sent|get|download|envoyé|télécharger|obtenir|von|gesendet|outlook|holen|enviado|"
        "enviada|obtener|descargar|baixe|obtenha|inviato|scarica|verstuurd|verzonden|skickat|"
        "hämta|sendt|wysłane|wysłano|pobierz|отправлено|odesláno|lähetetty"
    )
)
_TAGLINE_ENDS = ("から送信", "gönderildi", "发送")

# A closing followed by two or more short lines (name and title, company or phone) is a
# signature block; a closing with just a name under it is what the person wrote, and stays.
# "Thanks", "Cheers" and "Best" close a message only with a comma: "Thanks!" starts a line
# of the message as often as it ends one.
_CLOSING = re.compile(
    r"(?:(?:best|kind|warm|warmest)\s+regards|regards|best\s+wishes|sincerely|"
    r"yours\s+(?:truly|sincerely)|"
    r"med\s+venlig\s+hilsen|mit\s+freundlichen\s+grüßen|viele\s+grüße|beste\s+grüße|"
    r"cordialement|bien\s+à\s+vous|saludos|un\s+saludo|atentamente|cordiali\s+saluti|"
    r"distinti\s+saluti|met\s+vriendelijke\s+groet(?:en)?|atenciosamente|"
    r"med\s+vänlig\s+hälsning|vänliga\s+hälsningar|pozdrawiam|z\s+poważaniem|"
    r"с\s+уважением|敬具|此致)"
    r"(?:\s*/\s*[^,]{1,40})?\s*[,.!]?"
    r"|(?:thanks|thank\s+you|many\s+thanks|cheers|best)\s*,",
    re.IGNORECASE,
)
_RULE = re.compile(r"[-_=*~–—]{2,}")
_SIGNATURE_LINE_LENGTH = 60
_SIGNATURE_LINE_WORDS = 6
_SIGNATURE_MAX_LINES = 6


def _squash(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _has_when_or_who(text: str) -> bool:
    """A header names when (a time or a year) or who (an address)."""
    return bool("@" in text or _TIME.search(text) or _YEAR.search(text))


def _needs_a_look(line: str) -> bool:
    """`line` (stripped, not blank) might be a separator, a signature delimiter, an Outlook
    field or a tagline: a quick, permissive test before any pattern."""
    head = line[: _MAX_LABEL_LENGTH + 4]
    return (
        line.startswith(("--", "__"))
        or ":" in head
        or "：" in head
        or line[:3].lower() in _SEPARATOR_PREFIXES
        or head.split(None, 1)[0].lower() in _TAGLINE_FIRST_WORDS
        or line.endswith(_TAGLINE_ENDS)
        or "我的" in line[:4]
    )


class _Lines:
    """The body's lines, and what each line's neighbourhood says, worked out in a few passes
    at the start, so that reading looks at any line a bounded number of times."""

    def __init__(self, text: str) -> None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.raw = list(map(str.rstrip, text.split("\n")))
        self.text = lines = list(map(str.lstrip, self.raw))
        n = len(lines)
        self.quoted = [False] * n
        # quote_below[j]: the first non-blank line after line j is quoted, and comes within a
        # few lines (a header may leave a blank line or two before its quote).
        self.quote_below = [False] * n
        if ">" in text:
            self.quoted = [line[:1] == ">" for line in lines]
            next_quoted, blanks = False, 0
            for j in range(n - 1, -1, -1):
                self.quote_below[j] = next_quoted and blanks <= 3
                if lines[j]:
                    next_quoted, blanks = self.quoted[j], 0
                else:
                    blanks += 1
        # may_end_header[j]: line j ends like a header's last line (a colon, a "wrote"), or
        # sits right above a quote.
        self.may_end_header = [
            not quoted
            and (
                below
                or (line != "" and line[-1] in ":：")
                or line[-_VERB_TAIL:].lower().endswith(_VERB_ENDINGS)
            )
            for line, quoted, below in zip(lines, self.quoted, self.quote_below, strict=True)
        ]
        # header_near[i]: a header could start at line i: a line among the next three may
        # end one, and one names a date or an address. Only there are the patterns tried.
        self.header_near = [False] * n
        for j in compress(range(n), self.may_end_header):
            start = max(0, j - _MAX_HEADER_LINES + 1)
            if any(_DATE_OR_ADDRESS_HINT.search(line) for line in lines[start : j + 1]):
                self.header_near[start : j + 1] = [True] * (j + 1 - start)
        # plain[i]: nothing about line i asks for a closer look; it is the person's text (or
        # a blank line), and runs of such lines are kept in one step.
        self.plain = [
            not (quoted or (line and (near or _needs_a_look(line))))
            for line, quoted, near in zip(lines, self.quoted, self.header_near, strict=True)
        ]
        self._labels: list[str | None] = [None] * n

    def __len__(self) -> int:
        return len(self.text)

    def label(self, j: int) -> str:
        """ "from", "other" or "" for an Outlook field line ("From: …", "Sent: …")."""
        found = self._labels[j]
        if found is None:
            found = ""
            line = self.text[j]
            end = line.find(":", 0, _MAX_LABEL_LENGTH + 4)
            if end < 0:
                end = line.find("：", 0, _MAX_LABEL_LENGTH + 4)
            if end > 0:
                name = " ".join(line[:end].strip("* \t").lower().split())
                if name in _FROM_LABELS:
                    found = "from"
                elif name in _OTHER_LABELS:
                    found = "other"
            self._labels[j] = found
        return found


def _is_header_text(joined: str, lines: _Lines, last: int) -> bool:
    """`joined` (a line, or a wrapped header's lines joined) is a reply header; `last` is
    the index of its last line."""
    if not _has_when_or_who(joined):
        return False
    ends_with_colon = joined.endswith((":", "："))
    # "On Mon, 1 Jan 2024 at 10:00, Ann <ann@example.com> wrote:" and its translations.
    ends_with_verb = joined.rstrip(" :：")[-_VERB_TAIL:].lower().endswith(_VERB_ENDINGS)
    if ends_with_verb and (ends_with_colon or _LEADS.match(joined)):
        return True
    if ends_with_colon and any(words in joined.lower() for words in _VERB_THEN_DATE):
        return True
    # "<date>, <name> <address>:" in any language (Gmail's Russian, Japanese, Finnish, …).
    if ends_with_colon and _BRACKETED_ADDRESS.search(joined) and _DIGIT.search(joined):
        return True
    # Whatever the language, the line just above a quoted block that names a date or an
    # address is the block's attribution.
    return lines.quote_below[last] and bool(
        ends_with_colon or (_ADDRESS.search(joined) and _TIME.search(joined))
    )


def _window(lines: _Lines, i: int, k: int) -> str | None:
    """Lines i to i+k-1 joined, or None when they cannot be (part of) a header."""
    if i + k > len(lines) or any(lines.quoted[i : i + k]):
        return None
    parts = lines.text[i : i + k]
    if any(not part or len(part) > _MAX_HEADER_LENGTH for part in parts):
        return None
    joined = _squash(" ".join(parts))
    return joined if len(joined) <= _MAX_HEADER_LENGTH else None


def _reply_header_length(lines: _Lines, i: int) -> int:
    """How many lines, from line `i`, form an "On <date>, <name> wrote:" header (0: none)."""
    for k in range(1, _MAX_HEADER_LINES + 1):
        last = i + k - 1
        if last >= len(lines) or not lines.text[last] or lines.quoted[last]:
            return 0
        if not lines.may_end_header[last]:
            continue
        joined = _window(lines, i, k)
        if joined is None:
            return 0
        if not _is_header_text(joined, lines, last):
            if lines.text[last][-1] in ":：":
                return 0  # a header does not go on past a line that ends with a colon
            continue
        if k == 1:
            return 1
        # A wrapped header starts with its date, its address or its lead word; a line of the
        # reply just above a header ("…nibh.\nOn Dec 15, 2024, Ann wrote:") is not part of it.
        first = lines.text[i]
        if not ("@" in first or _DIGIT.search(first) or _LEADS.match(first)):
            return 0
        for j in range(1, k):
            later = _window(lines, i + j, k - j)
            if (
                later is not None
                and _LEADS.match(lines.text[i + j])
                and _is_header_text(later, lines, last)
            ):
                return 0  # the header starts further down
        return k
    return 0


def _is_outlook_block(lines: _Lines, i: int) -> bool:
    """Lines from `i` on are Outlook's header block: "From: …" and another field."""
    if not lines.label(i):
        return False
    n = len(lines)
    for f in range(i, min(i + _FROM_WITHIN, n)):
        if lines.label(f) == "from":
            break
        if not lines.label(f):
            return False
    else:
        return False
    for j in range(f + 1, min(f + 1 + _NEXT_LABEL_WITHIN, n)):
        if not lines.text[j]:
            return False
        if lines.label(j):
            return True
        # else a wrapped value ("From: Human Resources\n<hr@example.com>"): keep going
    return False


def _is_separator(line: str) -> bool:
    if line[0] == "-":
        # Text framed by dashes; a line of dashes alone is a rule in the person's text.
        inner = line.strip("-")
        return line.startswith("---") and line.endswith("---") and inner.strip() != ""
    if line[0] == "_":
        return len(line) >= 10 and line.strip("_") == ""  # Outlook's rule
    return (
        len(line) <= _SEPARATOR_MAX_LENGTH
        and " ".join(line.rstrip(":： ").lower().split()) in _SEPARATORS
    )


def _without_link(line: str) -> str:
    """`line` without a trailing "<https://…>", "(https://…)" or "[https://…]"."""
    if line[-1:] in (">", ")", "]"):
        opening = line.rfind({">": "<", ")": "(", "]": "["}[line[-1]])
        if opening > 0 and " " not in line[opening:]:
            return line[:opening].rstrip()
    return line


def _is_tagline(line: str) -> bool:
    if len(line) > _MAX_MARKER_LENGTH or len(line.split()) > _TAGLINE_MAX_WORDS:
        return False
    first = line[:24].split(None, 1)[0].lower()
    if not (first in _TAGLINE_FIRST_WORDS or line.endswith(_TAGLINE_ENDS) or "我的" in line[:4]):
        return False
    return _TAGLINE.match(_without_link(line)) is not None


def _is_signature_delimiter(line: str) -> bool:
    # "-- " is the standard one (RFC 3676); "--" is what it becomes once trailing spaces
    # are stripped, and "__" is what mailing lists put above their footer.
    return line in ("--", "__")


def _is_greeting(line: str) -> bool:
    """ "Hi Ann," alone: the reply below a header is still to come."""
    return len(line) <= 40 and line.endswith(",")


def _looks_like_signature_line(line: str) -> bool:
    """A name, a title, a company, a phone number: short, and no sentence."""
    return (
        len(line) <= _SIGNATURE_LINE_LENGTH
        and len(line.split()) <= _SIGNATURE_LINE_WORDS
        and not line.endswith((".", "?"))
    )


def _drop_signature_block(lines: list[str]) -> list[str]:
    """Without a signature block at the end: a few short lines (name, title, company,
    phone) under a closing ("Regards,") or under a rule ("—————")."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    first = next((i for i, line in enumerate(lines) if line.strip()), end)
    for i in range(max(first + 1, end - _SIGNATURE_MAX_LINES - 2), end):
        text = lines[i].strip()
        below = [line.strip() for line in lines[i + 1 : end] if line.strip()]
        if not all(map(_looks_like_signature_line, below)):
            continue
        if _CLOSING.fullmatch(text) and 2 <= len(below) <= _SIGNATURE_MAX_LINES:
            return lines[:i]
        # A rule long enough not to be a Markdown underline, or set off by a blank line.
        is_rule = _RULE.fullmatch(text) and (len(text) >= 20 or not lines[i - 1].strip())
        if is_rule and 1 <= len(below) <= _SIGNATURE_MAX_LINES:
            return lines[:i]
    return lines


def visible_reply(text: str) -> str:
    """What the sender newly wrote in `text`, the plain-text body of an email reply: without
    quoted (`>`) lines, reply headers in the common languages (also wrapped over two or three
    lines), Outlook header blocks, "Original message" and forwarding separators, signatures
    (after `-- `, or a short block under a closing or a rule) and device taglines ("Sent
    from my iPhone" and its translations).

    Top-posted replies end where the history starts. A header with nothing written above it
    is skipped with its quote, and what follows is read on: bottom-posted replies and answers
    written between quoted blocks are kept. The person's lines are kept as written, blank
    lines included; blank lines left where a quote was taken out are merged. "" when nothing
    new was written.
    """
    lines = _Lines(text)
    texts, raw, plain = lines.text, lines.raw, lines.plain
    n = len(texts)
    kept: list[str] = []
    written = 0  # non-blank lines kept
    last_written = ""
    removed_since_text = False
    i = 0
    while i < n:
        line = texts[i]
        if plain[i] and (line or not removed_since_text):
            # A run of plain lines, kept whole; list.index finds where it ends at C speed.
            try:
                end = plain.index(False, i)
            except ValueError:
                end = n
            run = texts[i:end]
            kept.extend(raw[i:end])
            blank = run.count("")
            if blank < len(run):
                written += len(run) - blank
                last_written = next(text for text in reversed(run) if text)
                removed_since_text = False
            i = end
            continue
        if lines.quoted[i]:
            removed_since_text = True
            i += 1
            continue
        if not line:
            # A blank line where a quote was taken out must not double the one before it.
            if kept and kept[-1]:
                kept.append("")
            i += 1
            continue
        header = _reply_header_length(lines, i) if lines.header_near[i] else 0
        if header:
            # Top-posted: everything from the header down is history. Nothing written above
            # it yet (bottom-posted, or answers between quotes): skip the header and its
            # quote, and read on.
            nothing_yet = written == 0 or (written == 1 and _is_greeting(last_written))
            if nothing_yet and lines.quote_below[i + header - 1]:
                removed_since_text = True
                i += header
                continue
            break
        if (
            _is_signature_delimiter(line)
            or _is_separator(line)
            or ((":" in line or "：" in line) and _is_outlook_block(lines, i))
            or _is_tagline(line)
        ):
            break
        kept.append(raw[i])
        written += 1
        last_written = line
        removed_since_text = False
        i += 1

    # Rules ("____", "====") that stood just above the history are not the reply.
    while kept and (not kept[-1].strip() or _RULE.fullmatch(kept[-1].strip())):
        kept.pop()
    return "\n".join(_drop_signature_block(kept)).strip()


# -- HTML ----------------------------------------------------------------------------------------

# Containers whose content, and everything after them, is the quoted history.
_HISTORY_IDS = {"appendonsend", "divrplyfwdmsg", "stopspelling", "olk_src_body_section"}
_HISTORY_CLASSES = {"outlookmessageheader", "yahoo_quoted", "zmail_extra", "moz-forward-container"}
# Containers whose content is dropped, and the rest goes on: attributions and signatures.
_DROPPED_CLASSES = {"gmail_attr", "moz-cite-prefix", "gmail_signature", "moz-signature"}
_DROPPED_IDS = {"signature"}
_SKIPPED_TAGS = {"head", "script", "style", "title", "template", "noscript", "xml"}
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
    "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
}  # fmt: skip
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


# Only the start of a long HTML body is read: the reply is at the top, and what makes a body
# run to megabytes is quoted history and inline images. It bounds the time a hostile body
# can take, too.
_MAX_HTML_LENGTH = 1_000_000


class _History(Exception):
    """Raised inside the parser when the rest of the document is quoted history."""


class _TextTarget:
    """Parser target (lxml's streaming interface) turning HTML events into lines of text.
    Keeps counters, never a stack of open elements, so a deeply nested or never-closed
    document costs no more than a flat one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.quote_depth = 0
        self.pre_depth = 0
        self.skip_depth = 0
        self.outlook_paragraph = False  # inside Outlook's <p class="MsoNormal">: one line
        # The dropped container's tag and how many of that tag are open inside it.
        self.dropping: tuple[str, int] | None = None

    def _break(self) -> None:
        text = ""
        if self.line:
            text = "".join(self.line)
            self.line = []
            if not self.pre_depth:
                text = _squash(text)
        if self.quote_depth:
            self.lines.append(f"> {text}" if text else ">")
        else:
            self.lines.append(text)

    def _end_block(self) -> None:
        if not self.line:
            return
        if "".join(self.line).strip():
            self._break()
        else:
            self.line = []

    def _blank_line(self) -> None:
        if self.lines and self.lines[-1] not in ("", ">"):
            self.lines.append(">" if self.quote_depth else "")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.skip_depth or tag in _SKIPPED_TAGS:
            self.skip_depth += 1
            return
        if self.dropping:
            name, depth = self.dropping
            if tag == name:
                self.dropping = (name, depth + 1)
            return
        element_id = ""
        classes: frozenset[str] | set[str] = frozenset()
        if attrib:
            element_id = (attrib.get("id") or "").lower()
            classes = set((attrib.get("class") or "").lower().split())
        if element_id in _HISTORY_IDS or classes & _HISTORY_CLASSES:
            raise _History
        if tag not in _VOID_TAGS and (element_id in _DROPPED_IDS or classes & _DROPPED_CLASSES):
            self._end_block()
            self.dropping = (tag, 1)
            return
        if tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS:
            self._end_block()
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "pre":
                self.pre_depth += 1
            elif tag == "li":
                self.line.append("- ")
            elif tag == "p":
                # A paragraph is set off by a blank line; Outlook's "MsoNormal" paragraphs
                # are its lines, and an empty one is how it writes a blank line.
                self.outlook_paragraph = "msonormal" in classes
                if not self.outlook_paragraph:
                    self._blank_line()

    def end(self, tag: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if self.dropping:
            name, depth = self.dropping
            if tag == name:
                self.dropping = (name, depth - 1) if depth > 1 else None
            return
        if tag not in _BLOCK_TAGS:
            return
        if tag == "p" and self.outlook_paragraph:
            self.outlook_paragraph = False
            self._break()  # an empty one too: a blank line
            return
        self._end_block()
        if tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        elif tag == "p":
            self._blank_line()

    def data(self, data: str) -> None:
        if self.skip_depth or self.dropping:
            return
        data = data.replace("\xa0", " ")
        if not self.pre_depth:
            self.line.append(data)
            return
        parts = data.split("\n")
        for part in parts[:-1]:
            self.line.append(part)
            self._break()
        self.line.append(parts[-1])

    def comment(self, text: str) -> None:
        pass

    def close(self) -> str:
        self._end_block()
        out: list[str] = []
        for line in self.lines:
            if line or (out and out[-1]):  # runs of blank lines become one
                out.append(line)
        return "\n".join(out).strip()


def html_to_text(html: str) -> str:
    """Plain text for `visible_reply` from an HTML-only email body: `<br>`, `<p>` and
    `<div>` become line breaks, blockquotes become `>` lines, scripts, styles and the head
    are dropped, entities decoded. The containers Outlook and Yahoo put the quoted message
    in end the text; Gmail's and Thunderbird's attribution lines and signatures are dropped.

    libxml2's HTML tokenizer (through lxml) reads the markup in linear time whatever it
    holds; the standard library's `html.parser` goes quadratic on some malformed input
    (many unclosed comments, CVE-2025-6069) in Python releases before its fix, 3.11.7 among
    them.
    """
    target = _TextTarget()
    parser = etree.HTMLParser(target=target, encoding="utf-8", no_network=True)
    try:
        parser.feed(html[:_MAX_HTML_LENGTH].encode("utf-8", "replace"))
        parser.close()
    except _History:
        pass
    return target.close()
