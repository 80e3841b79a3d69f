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
# A header that starts with its date and has no verb: Gmail's "2013/7/20 sam via Forum <…>" or
# "2011/4/7 Nathan <support@example.com>" above the quote it introduces.
_DATE_START = re.compile(r"(?:\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b")
# Clients that wrap a long header put its name and address on lines of their own, even blank
# lines and a "> wrote:" their quoting marks (Polymail); a header is at most this many lines.
_MAX_LONG_HEADER_LINES = 6
# "Ann wrote:" with no date or address: an attribution only where a quote or nothing follows.
_MAX_ATTRIBUTION_LENGTH = 80

# -- Outlook's header block ("From: … / Sent: … / To: … / Subject: …") ---------------------

# The labels of Outlook's localised header block, lower-cased, in the languages Outlook ships
# (the label words as its localised builds and mail-parser-reply's lists write them): From,
# then Sent / Date / To / Cc / Subject. A block needs "From:" and another label, so a short
# label that is also a common word ("a", "do", "no") is harmless on its own.
_FROM_LABELS = frozenset(
    _words(
        # en fr de nl it es/pt sv da/no pl/cs/sk/sl/hr ru/bg uk tr hu fi ro el
        "from|de|von|absender|van|afzender|da|mittente|remitente|remetente|expéditeur|från|"
        "avsändare|fra|afsender|avsender|od|nadawca|odesílatel|odosielateľ|šalje|"
        "pošiljatelj|от|отправитель|від|відправник|kimden|gönderen|feladó|lähettäjä|"
        "de la|expeditor|από|αποστολέας|"
        # et lv lt is ca eu vi id ms th ar he fa hi zh ja ko
        "saatja|no|nuo|frá|nork|từ|dari|daripada|จาก|من|المرسل|מאת|از|प्रेषक|"
        "发件人|寄件者|寄件人|差出人|보낸 사람|보낸사람"
    )
)
_OTHER_LABELS = frozenset(
    _words(
        # en
        "sent|date|to|cc|bcc|subject|reply-to|"
        # fr
        "envoyé|envoyé le|à|objet|copie à|message du|sujet|destinataire|"
        # de
        "gesendet|datum|an|betreff|kopie|"
        # es, pt, ca, gl, eu
        "enviado|enviada|enviada em|enviado el|enviat|enviat el|para|per a|asunto|assumpte|"
        "fecha|cco|assunto|data|noiz|nori|gaia|"
        # it
        "inviato|a|oggetto|"
        # nl
        "verzonden|aan|onderwerp|"
        # sv, da, no, is
        "skickat|till|ämne|kopia|sendt|til|emne|dato|kopi|efni|"
        # pl, cs, sk, sl, hr, sr
        "wysłano|wysłane|do|temat|dw|odesláno|komu|předmět|odoslané|kópia|predmet|dátum|"
        "poslano|poslato|prima|za|kp|kopija|zadeva|"
        # ru, uk, bg
        "отправлено|кому|тема|дата|копия|надіслано|відправлено|копія|изпратено|до|относно|"
        "копие|"
        # tr, hu, fi, ro, el
        "gönderildi|gönderilme tarihi|kime|bilgi|konu|tarih|elküldve|címzett|másolatot kap|"
        "másolat|tárgy|lähetetty|vastaanottaja|kopio|aihe|päivämäärä|trimis|către|catre|"
        "subiect|εστάλη|προς|κοιν.|κοιν|θέμα|ημερομηνία|"
        # et, lv, lt, vi, id, ms, th
        "saadetud|adressaat|koopia|teema|kuupäev|nosūtīts|kam|tēma|temats|datums|išsiųsta|"
        "tema|đã gửi|đến|chủ đề|ngày|dikirim|kepada|perihal|subjek|tanggal|tembusan|"
        "dihantar|tarikh|ส่ง|ถึง|เรื่อง|สำเนา|วันที่|"
        # ar, he, fa, hi
        "تم الإرسال|أرسل|إلى|نسخة|الموضوع|التاريخ|נשלח|אל|עותק|נושא|תאריך|ارسال شده|به|"
        "موضوع|تاریخ|भेजा गया|प्रति|विषय|"
        # zh, ja, ko
        "发送时间|发送日期|日期|收件人|抄送|主题|主旨|寄件日期|收件者|副本|送信日時|日付|宛先|"
        "件名|보낸 날짜|받는 사람|참조|제목|날짜"
    )
)
# The date field and the fields that follow it in a header block with no "From:" (a mail
# client's "Date: … / To: …"); an appointment's "Date: / Time: / Address:" is not one.
_DATE_LABELS = frozenset(
    _words(
        "date|sent|datum|fecha|data|envoyé|envoyé le|gesendet|inviato|verzonden|skickat|"
        "sendt|enviado|enviada|dato|wysłano|odesláno|отправлено|дата|tarih|päivämäärä|"
        "发送时间|日期|日付|送信日時"
    )
)
_ADDRESSEE_LABELS = frozenset(
    _words(
        "to|cc|subject|à|a|objet|an|betreff|para|asunto|assunto|oggetto|aan|onderwerp|till|"
        "ämne|til|emne|do|temat|komu|předmět|кому|тема|kime|konu|收件人|主题|宛先|件名"
    )
)
# A subject line pasted alone at the top of a message: these labels, or a forward's prefix.
_SUBJECT_LABELS = frozenset(
    _words(
        "subject|objet|betreff|asunto|oggetto|onderwerp|assunto|ämne|emne|temat|тема|tárgy|"
        "předmět|predmet|konu|aihe|subiect|θέμα|件名|主题|主旨|제목"
    )
)
_FORWARD_PREFIX = re.compile(r"(?:fw|fwd|wg|tr|rv|enc|pd)\s?:\s*\S", re.IGNORECASE)
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
# Text framed by dashes is a separator when it speaks of a message, a forward or a reply, or
# names a date or an author ("---- On … wrote ----"); "--- Enter Feedback Below ---" in a form
# the sender filled in is not.
_FRAME_WORDS = re.compile(
    r"message|nachricht|bericht|meddel|melding|besked|mensaje|messaggio|mensagem|wiadomo|"
    r"сообщени|viesti|üzenet|zpráva|mail|origin|ursprüng|forward|weitergeleitet|transf|"
    r"reenviad|inoltrat|doorgestuurd|vidarebefordra|videresend|reply|antwort|risposta|"
    r"respuesta|réponse|邮件|郵件|メッセージ|메시지",
    re.IGNORECASE,
)
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
    # da, no, sv
    r"(?:med\s+)?(?:venlig|vennlig)\s+hilsen|(?:de\s+)?bedste\s+hilsner|beste\s+hilsen|mvh|"
    r"med\s+vänlig(?:a)?\s+hälsning(?:ar)?|vänliga\s+hälsningar|(?:bästa\s+)?hälsningar|"
    # de, nl
    r"mit\s+freundlichen\s+gr(?:ü|ue)(?:ß|ss)en|(?:viele|beste|liebe|freundliche)\s+gr(?:ü|ue)(?:ß|ss)e|"
    r"mfg|lg|met\s+vriendelijke\s+groet(?:en)?|(?:hartelijke\s+)?groet(?:en)?|"
    # fr, es, it, pt, ro
    r"(?:bien\s+)?cordialement|bien\s+à\s+vous|(?:sincères\s+)?salutations|"
    r"(?:un\s+)?(?:cordial(?:es)?\s+)?saludos?(?:\s+cordiales)?|atentamente|cordialmente|"
    r"(?:cordiali|distinti)\s+saluti|saluti|atenciosamente|abraços|cu\s+(?:stimă|respect)|"
    # pl, cs, sk, hu, fi, tr, el
    r"pozdrawiam|z\s+poważaniem|z\s+powazaniem|s\s+pozdravem|s\s+pozdravom|s\s+úctou|"
    r"üdvözlettel|tisztelettel|(?:ystävällisin\s+)?terveisin|saygılarımla|iyi\s+çalışmalar|"
    r"με\s+εκτίμηση|"
    # ru, uk, ja, zh, ko
    r"с\s+уважением|з\s+повагою|敬具|此致|祝好|감사합니다)"
    r"(?:\s*/\s*[^,]{1,40})?\s*[,.!]?"
    r"|(?:thanks|thank\s+you|many\s+thanks|cheers|best)\s*,",
    re.IGNORECASE,
)
_RULE = re.compile(r"[-_=*~–—]{2,}")
_SIGNATURE_LINE_LENGTH = 60
_SIGNATURE_LINE_WORDS = 6
_SIGNATURE_MAX_LINES = 6

# -- Lines other systems add: gateway banners, help desk notices, legal disclaimers ----------

# A mail gateway's warning above the message ("CAUTION: This email originated from outside of
# the organization…", "[EXTERNAL]", Microsoft's "You don't often get email from …") and a
# help desk's "This is a follow-up to your previous request #123": nobody wrote them. Only
# tried before anything was written, and only when the line names an outside sender, so a
# customer's own "Warning: the gate is broken." stays.
_BANNER = re.compile(
    r"\W{0,3}(?:external|ext)(?:\s+(?:email|e-mail|mail|sender|message))?\W{0,3}$"
    r"|(?:\W{0,3}(?:caution|warning|attention|notice|important|external|ext|achtung|vorsicht|"
    r"attenzione|atención|avertissement)\b[^:\]]{0,30}[:\]!-]\W{0,3})?"
    r"(?:this\s+(?:e-?mail|message)\s+(?:originated|came|comes|was\s+sent|is\s+from|is\s+sent"
    r"|has\s+been\s+sent)[^.]{0,40}?(?:outside|external)"
    r"|\W{0,3}(?:external|outside)\s+(?:sender|e-?mail|message)\W{0,3}(?:[:!\]*-]|$)"
    r"|you\s+don'?t\s+often\s+get\s+e-?mail\s+from"
    r"|this\s+is\s+a\s+follow-up\s+to\s+your\s+previous\s+request)",
    re.IGNORECASE,
)
# A banner wraps: its next lines go with it while they run on from an unfinished sentence or
# speak of links, attachments and senders.
_BANNER_MORE = re.compile(
    r".{0,160}?\b(?:click|links?|attachments?|sender|safe|phishing|suspicious|caution|"
    r"outside|external|learn\s+why)\b",
    re.IGNORECASE,
)
_BANNER_MAX_LINES = 6
_SENTENCE_END = (".", "!", "?", "…")

# A disclaimer under the sign-off: a heading alone ("Disclaimer", "CONFIDENTIALITY NOTICE:"),
# or a paragraph opening as legal and virus-scan boilerplate does. It ends the reply; only
# tried at the start of a paragraph, once something was written.
_DISCLAIMER_HEADING = (
    r"(?:legal\s+|e-?mail\s+)?disclaimer|(?:privileged\s+(?:and|&)\s+)?confidential(?:ity)?"
    r"(?:\s+(?:notice|note|statement|warning|information|communication))?|important\s+notice|"
    r"haftungsausschluss|vertraulichkeitshinweis|avis\s+de\s+confidentialité|aviso\s+legal|"
    r"avviso\s+di\s+riservatezza"
)
_DISCLAIMER = re.compile(
    rf"\W{{0,3}}(?:{_DISCLAIMER_HEADING})\W{{0,3}}$"
    rf"|\W{{0,3}}confidentiality\s+(?:notice|note|statement|warning)\W{{0,3}}:"
    rf"|(?:\W{{0,3}}(?:{_DISCLAIMER_HEADING})\s*[:.-]\W{{0,3}})?"
    r"(?:the\s+(?:information|contents?)\s+(?:contained\s+)?(?:in|of)\s+this\s+"
    r"(?:e-?mail|message|communication|transmission)"
    r"|this\s+(?:e-?mail|message|communication|transmission)(?:\s+and\s+(?:any|its)\s+"
    r"(?:attachments?|files?)[^.]{0,40}?)?\s+(?:is|are|may\s+(?:contain|be)|contains?)\s+"
    r"(?:strictly\s+)?(?:confidential|privileged|intended\s+(?:solely|only))"
    r"|if\s+you\s+(?:are\s+not\s+the\s+intended|have\s+received\s+this\s+"
    r"(?:e-?mail|message|communication)\s+in\s+error)"
    r"|this\s+(?:e-?mail|message)\s+has\s+been\s+(?:scanned|checked)"
    r"|you\s+(?:are\s+)?receiv(?:ed|ing)\s+this\s+(?:e-?mail|message)\s+because"
    r"|(?:please\s+)?consider\s+the\s+environment\s+before\s+printing"
    r"|diese\s+e-?mail\s+(?:enthält|kann)\s+vertrauliche"
    r"|ce\s+(?:message|courriel|e-?mail)[^.]{0,40}?\s+(?:est|sont|peut\s+contenir)\s+"
    r"(?:strictement\s+)?(?:confidentiel|des\s+informations\s+confidentielles)"
    r"|este\s+(?:mensaje|correo)[^.]{0,40}?confidencial"
    r"|questo\s+messaggio[^.]{0,40}?riservat)",
    re.IGNORECASE,
)
_MAX_BOILERPLATE_LOOK = 300
# Lines starting so may be a banner or a disclaimer and get a closer look.
_BOILERPLATE_STARTS = (
    "caution", "warning", "attention", "notice", "important", "external", "ext", "[", "*",
    "achtung", "vorsicht", "attenzione", "atención", "avertissement", "you don", "this e",
    "this m", "this c", "this t", "this is a follow", "disclaimer", "legal", "e-mail dis",
    "email dis", "confidential", "privileged", "the information", "the content", "if you",
    "you are rec", "you receiv", "please consider", "consider the", "haftungs", "vertraulich",
    "diese e", "avis de", "aviso", "avviso", "ce message", "ce courriel", "ce mail",
    "ce e-mail", "este m", "este c", "questo",
)  # fmt: skip

# Help desks and forums ask for the reply above a marker ("##- Please type your reply above
# this line -##", "Reply above this line"): everything from it down is history.
_ABOVE_THIS_LINE = re.compile(
    "above this line|oberhalb dieser zeile|über dieser zeile|au-dessus de cette ligne|"
    "por encima de esta línea|sopra questa riga|boven deze regel|acima desta linha|"
    "ovanför denna rad|ovenfor denne linje|powyżej tej linii|выше этой строки",
    re.IGNORECASE,
)
_MAX_MARKER_LOOK = 120
# A header block at the top of a body (a forward's fields) is at most this long.
_TOP_BLOCK_MAX_LINES = 12


def _squash(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _has_when_or_who(text: str) -> bool:
    """A header names when (a time or a year) or who (an address)."""
    return bool("@" in text or _TIME.search(text) or _YEAR.search(text))


def _ends_with_verb(text: str) -> bool:
    """ "… wrote:", "… a écrit :": `text` ends with a header's verb, a colon after it or not."""
    return text.rstrip(" :：")[-_VERB_TAIL:].lower().endswith(_VERB_ENDINGS)


def _needs_a_look(line: str) -> bool:
    """`line` (stripped, not blank) might be a separator, a signature delimiter, an Outlook
    field or a tagline: a quick, permissive test before any pattern."""
    head = line[: _MAX_LABEL_LENGTH + 4]
    lower = head.lower()
    return (
        line.startswith(("--", "__", "*-", "_-"))
        or ":" in head
        or "：" in head
        or lower[:3] in _SEPARATOR_PREFIXES
        or lower.split(None, 1)[0] in _TAGLINE_FIRST_WORDS
        or line.endswith(_TAGLINE_ENDS)
        or "我的" in line[:4]
        or lower.startswith(_BOILERPLATE_STARTS)
        or _marks_reply_above(line)
    )


def _marks_reply_above(line: str) -> bool:
    """ "##- Please type your reply above this line -##" and its translations."""
    return _ABOVE_THIS_LINE.search(line[:_MAX_MARKER_LOOK]) is not None


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
        # after_quote[j]: the first line at or after j that is neither blank nor quoted (n if
        # none): where the sender's text resumes below a quoted block.
        self.after_quote = [n] * n
        if ">" in text or "|" in text:
            # "|" is how some clients quote; a table row ("| a | b |") is the sender's own.
            self.quoted = [
                line[:1] == ">" or (line[:1] == "|" and not (len(line) > 1 and line[-1] == "|"))
                for line in lines
            ]
            next_quoted, blanks, resumes = False, 0, n
            for j in range(n - 1, -1, -1):
                self.quote_below[j] = next_quoted and blanks <= 3
                if lines[j]:
                    next_quoted, blanks = self.quoted[j], 0
                    if not next_quoted:
                        resumes = j
                else:
                    blanks += 1
                self.after_quote[j] = resumes
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
        # last_text: the last line that is not blank (-1 if none).
        self.last_text = next((j for j in range(n - 1, -1, -1) if lines[j]), -1)
        # header_near[i]: a header could start at line i: a line among the next three may
        # end one, and one names a date or an address; or the line is "Ann wrote:". Only
        # there are the patterns tried.
        self.header_near = [False] * n
        for j in compress(range(n), self.may_end_header):
            start = max(0, j - _MAX_HEADER_LINES + 1)
            if any(_DATE_OR_ADDRESS_HINT.search(line) for line in lines[start : j + 1]):
                self.header_near[start : j + 1] = [True] * (j + 1 - start)
            elif len(lines[j]) <= _MAX_ATTRIBUTION_LENGTH and _ends_with_verb(lines[j]):
                self.header_near[j] = True
        # A header wrapped over more lines ends with its verb, quoted or not: the lines above
        # it that may start one are looked at too.
        for j in [j for j, line in enumerate(lines) if line[-1:] in (":", "：")]:
            line = lines[j]
            if _ends_with_verb(line.lstrip("> ")):
                start = max(0, j - _MAX_LONG_HEADER_LINES + 1)
                self.header_near[start:j] = [
                    near or bool(_LEADS.match(above) and _DIGIT.search(above))
                    for near, above in zip(self.header_near[start:j], lines[start:j], strict=True)
                ]
        # plain[i]: nothing about line i asks for a closer look; it is the person's text (or
        # a blank line), and runs of such lines are kept in one step.
        self.plain = [
            not (quoted or (line and (near or _needs_a_look(line))))
            for line, quoted, near in zip(lines, self.quoted, self.header_near, strict=True)
        ]
        self._labels: list[str | None] = [None] * n

    def __len__(self) -> int:
        return len(self.text)

    def label_name(self, j: int) -> str:
        """The lower-cased words before a colon near the start of line `j` ("" if none)."""
        line = self.text[j]
        end = line.find(":", 0, _MAX_LABEL_LENGTH + 4)
        if end < 0:
            end = line.find("：", 0, _MAX_LABEL_LENGTH + 4)
        return " ".join(line[:end].strip("* \t").lower().split()) if end > 0 else ""

    def label(self, j: int) -> str:
        """ "from", "other" or "" for an Outlook field line ("From: …", "Sent: …")."""
        found = self._labels[j]
        if found is None:
            name = self.label_name(j)
            found = "from" if name in _FROM_LABELS else "other" if name in _OTHER_LABELS else ""
            self._labels[j] = found
        return found


def _is_header_text(joined: str, lines: _Lines, last: int) -> bool:
    """`joined` (a line, or a wrapped header's lines joined) is a reply header; `last` is
    the index of its last line."""
    ends_with_colon = joined.endswith((":", "："))
    # "On Mon, 1 Jan 2024 at 10:00, Ann <ann@example.com> wrote:" and its translations.
    ends_with_verb = _ends_with_verb(joined)
    if not _has_when_or_who(joined):
        # "Ann wrote:" alone on its line is an attribution where a quote or nothing at all
        # follows it; with the sender's text under it ("Something wrote:\n…") it is theirs,
        # and so are the lines above it.
        return (
            ends_with_colon
            and ends_with_verb
            and len(joined) <= _MAX_ATTRIBUTION_LENGTH
            and joined == _squash(lines.text[last])
            and (lines.quote_below[last] or last >= lines.last_text)
        )
    if ends_with_verb and (ends_with_colon or _LEADS.match(joined)):
        return True
    if ends_with_colon and any(words in joined.lower() for words in _VERB_THEN_DATE):
        return True
    # "<date>, <name> <address>:" in any language (Gmail's Russian, Japanese, Finnish, …).
    if ends_with_colon and _BRACKETED_ADDRESS.search(joined) and _DIGIT.search(joined):
        return True
    # Whatever the language, the line just above a quoted block that names a date or an
    # address is the block's attribution, and so is one that starts with a date and names
    # someone's address ("12/05/2024 works for me" above a quote is an answer).
    return lines.quote_below[last] and bool(
        ends_with_colon
        or (_ADDRESS.search(joined) and _TIME.search(joined))
        or (_DATE_START.match(joined) and ("@" in joined or "<" in joined))
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


def _long_header_length(lines: _Lines, i: int) -> int:
    """How many lines, from line `i`, form a header wrapped over more than three lines (0:
    none): it starts with its lead word and a date ("On Tue, Apr 11, 2017 at 10:07 PM John
    Smith"), and within a few lines, blank ones and its name and address on lines of their
    own among them, a line ends with its verb ("> wrote:", quoted or not)."""
    texts, n = lines.text, len(lines)
    first = texts[i]
    # The date is on the first line (a time or a year, not "On Jan 15 we start"), and the
    # address that made the client wrap it is in there somewhere.
    if (
        not _LEADS.match(first)
        or not (_TIME.search(first) or _YEAR.search(first))
        or first.endswith(_SENTENCE_END)
    ):
        return 0
    length, address = 0, False
    for j in range(i, min(i + _MAX_LONG_HEADER_LINES, n)):
        line = texts[j].lstrip("> ") if lines.quoted[j] else texts[j]
        length += len(line)
        address = address or "@" in line
        if length > _MAX_HEADER_LENGTH or (j > i and line.endswith(_SENTENCE_END)):
            return 0
        if j > i and line.endswith((":", "：")) and _ends_with_verb(line):
            return j - i + 1 if address else 0
        if lines.quoted[j] and line:
            return 0  # quoted text before the verb: the header ended above
    return 0


# "reply On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:": the sender's last words and
# the header on one line (a client that joined them). The header starts at "On", after spaces
# or dashes.
_INNER_HEADER = re.compile(r"(?<=\S)[\s-]*-{0,3}\s*(?=On\s)")


def _words_before_header(line: str) -> str:
    """The sender's words in front of a reply header on the same line ("" when none)."""
    for found in _INNER_HEADER.finditer(line):
        rest = line[found.end() :]
        if (
            _LEADS.match(rest)
            and rest.endswith((":", "："))
            and _ends_with_verb(rest)
            and _has_when_or_who(rest)
        ):
            return line[: found.start()].rstrip(" -")
    return ""


def _is_outlook_block(lines: _Lines, i: int) -> bool:
    """Lines from `i` on are Outlook's header block: "From: …" and another field, or a date
    field straight above an addressee or subject field ("Date: …\nTo: …", no "From")."""
    if not lines.label(i):
        return False
    n = len(lines)
    for f in range(i, min(i + _FROM_WITHIN, n)):
        if lines.label(f) == "from":
            break
        if not lines.label(f):
            return False
    else:
        return (
            lines.label_name(i) in _DATE_LABELS
            and i + 1 < n
            and lines.label_name(i + 1) in _ADDRESSEE_LABELS
        )
    for j in range(f + 1, min(f + 1 + _NEXT_LABEL_WITHIN, n)):
        if not lines.text[j]:
            return False
        if lines.label(j):
            return True
        # else a wrapped value ("From: Human Resources\n<hr@example.com>"): keep going
    return False


def _is_separator(line: str) -> bool:
    if line[0] == "_" and len(line) >= 10 and line.strip("_") == "":
        return True  # Outlook's rule
    if line[0] in "*_":
        # Bold or underlined, as an HTML part turned to text writes it:
        # "*-------- Original Message --------*".
        line = line.strip("*_ \t")
        if not line:
            return False
    if line[0] == "-" and line.startswith("---") and line.endswith("---"):
        # Text framed by dashes; a line of dashes alone is a rule in the person's text.
        framed = line.strip("-").strip()
        return framed != "" and bool(
            _FRAME_WORDS.search(framed) or _has_when_or_who(framed) or _ends_with_verb(framed)
        )
    if len(line) <= _SEPARATOR_MAX_LENGTH and (
        " ".join(line.rstrip(":： ").lower().split()) in _SEPARATORS
    ):
        return True
    return len(line) <= _MAX_MARKER_LOOK and _marks_reply_above(line)


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


def _is_disclaimer(line: str) -> bool:
    return _DISCLAIMER.match(line[:_MAX_BOILERPLATE_LOOK]) is not None


def _banner_length(lines: _Lines, i: int) -> int:
    """How many lines, from line `i`, form a gateway's banner or a help desk's notice (0:
    none): the line that names an outside sender, and the lines its text wraps onto."""
    texts = lines.text
    if not _BANNER.match(texts[i][:_MAX_BOILERPLATE_LOOK]):
        return 0
    k = 1
    while k < _BANNER_MAX_LINES and i + k < len(lines) and texts[i + k]:
        if lines.quoted[i + k]:
            break
        unfinished = not texts[i + k - 1].rstrip("\"')]»*").endswith(_SENTENCE_END)
        if not (unfinished or _BANNER_MORE.match(texts[i + k][:_MAX_BOILERPLATE_LOOK])):
            break
        k += 1
    return k


def _is_pasted_subject(lines: _Lines, i: int) -> bool:
    """A subject line pasted above the message ("FW: Arrival notice", "Subject: Booking"),
    not a sentence."""
    line = lines.text[i]
    if line.endswith(_SENTENCE_END):
        return False
    return bool(_FORWARD_PREFIX.match(line)) or lines.label_name(i) in _SUBJECT_LABELS


def _top_block_end(lines: _Lines, i: int) -> int:
    """Where a header block at the very top of the body ends: a forwarding separator and the
    fields under it ("From: …", "Date: …", a value wrapped between two of them), through the
    last field. The text below is the forwarded or pasted message, and is kept."""
    texts, n = lines.text, len(lines)
    j = i
    if _is_separator(texts[j]):
        j += 1
        while j < n and j - i <= 3 and not texts[j]:
            j += 1  # Apple Mail leaves a blank line under "Begin forwarded message:"
        if j >= n or not lines.label(j):
            return i + 1
    last_field = j
    while j < n and texts[j] and not lines.quoted[j] and j - last_field <= 1:
        if lines.label(j):
            last_field = j  # a value between two fields may wrap onto one more line
        j += 1
        if j - i >= _TOP_BLOCK_MAX_LINES:
            break
    return last_field + 1


def _ends_reply(lines: _Lines, i: int, written: int) -> bool:
    """Line `i` (not blank, not quoted, no reply header) starts the history, a signature or
    boilerplate: the reply ends above it."""
    line = lines.text[i]
    return (
        _is_signature_delimiter(line)
        or _is_separator(line)
        or ((":" in line or "：" in line) and _is_outlook_block(lines, i))
        or _is_tagline(line)
        or (written > 0 and _is_disclaimer(line))
    )


def _answers_below(lines: _Lines, end: int) -> bool:
    """Below the quoted block that starts under line `end - 1`, the sender writes again: the
    first line after the quote is set apart by a blank line (not a quoted line's wrapped
    tail) and starts no history, signature or boilerplate. Then the quote was answered
    inline, and the answers are kept."""
    k = lines.after_quote[end]
    if k >= len(lines) or lines.text[k - 1]:
        return False
    if lines.header_near[k] and _reply_header_length(lines, k):
        return False
    return not _ends_reply(lines, k, written=1)


def visible_reply(text: str) -> str:
    """What the sender newly wrote in `text`, the plain-text body of an email reply: without
    quoted (`>`) lines, reply headers in the common languages (also wrapped over two or three
    lines), Outlook header blocks, "Original message" and forwarding separators, signatures
    (after `-- `, or a short block under a closing or a rule), device taglines ("Sent from
    my iPhone" and its translations), mail gateways' banners above the message and legal
    disclaimers below it.

    Top-posted replies end where the history starts. A header with nothing written above it
    is skipped with its quote, and what follows is read on: bottom-posted replies and answers
    written between quoted blocks are kept; so are answers written under a quote after a
    top-posted introduction. A header block at the very top (a forward, a pasted message) is
    skipped and the message under it kept. The person's lines are kept as written, blank
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
    history_seen = False  # a quote or a reply header was taken out
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
            removed_since_text = history_seen = True
            i += 1
            continue
        if not line:
            # A blank line where a quote was taken out must not double the one before it.
            if kept and kept[-1]:
                kept.append("")
            i += 1
            continue
        if written == 0:
            # Above the message: a gateway's banner, a help desk's notice, a pasted subject.
            skip = _banner_length(lines, i)
            if not skip and _is_pasted_subject(lines, i) and not _is_outlook_block(lines, i):
                skip = 1
            if skip:
                removed_since_text = True
                i += skip
                continue
        header = 0
        if lines.header_near[i]:
            header = _reply_header_length(lines, i) or _long_header_length(lines, i)
        if header:
            if header == 1 and (words := _words_before_header(raw[i])):
                kept.append(words)  # "reply On …, Bob wrote:": the words are the reply's
                written += 1
                last_written = words.strip()
            # Top-posted: everything from the header down is history. Nothing written above
            # it yet (bottom-posted, or answers between quotes), or answers written under its
            # quote: skip the header and its quote, and read on.
            end = i + header
            nothing_yet = written == 0 or (written == 1 and _is_greeting(last_written))
            if written == 0 and not history_seen and not lines.quote_below[end - 1]:
                # The body starts with a header and no quote marks what it introduces: the
                # words under it are all there is to show, as under a forward's header block.
                removed_since_text = True
                i = end
                continue
            if lines.quote_below[end - 1] and (nothing_yet or _answers_below(lines, end)):
                if written:
                    while kept and not kept[-1]:
                        kept.pop()
                    kept.append("")  # one blank line where the quote was
                removed_since_text = history_seen = True
                i = end
                continue
            break
        if (
            written == 0
            and not history_seen
            and (
                _is_separator(line)
                or ((":" in line or "：" in line) and _is_outlook_block(lines, i))
            )
        ):
            # The body starts with a header block (a forward, a pasted message): what is
            # under it is all there is to show.
            removed_since_text = True
            i = _top_block_end(lines, i)
            continue
        if _ends_reply(lines, i, written):
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
