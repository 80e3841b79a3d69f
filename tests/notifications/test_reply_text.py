"""The visible reply of an inbound email: the public corpus, each language's headers and
taglines, Outlook blocks, signatures, HTML bodies, and the time a hostile body can take."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from notifications.inbound.reply_text import html_to_text, visible_reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
REPLIES = FIXTURES / "replies"
UNSEEN = FIXTURES / "unseen"
UNSEEN2 = FIXTURES / "unseen2"
UNSEEN3 = FIXTURES / "unseen3"
HTML = FIXTURES / "html"
REQUIRED_SCORE = 0.90
# Measured once, before anything changed, on replies the extractor was never tuned on: 51/60
# (docs/inbound-email-text.md). Its nine misses were then looked at and their categories fixed
# (60/60): the set is no longer unseen, and this floor only guards against regressions.
UNSEEN_REQUIRED_PERCENT = 95
# Collected after that tuning and scored once, with nothing changed after: 45/57 (78.9%). The
# floor is that figure rounded down; it keeps the score from regressing and is no target.
UNSEEN2_REQUIRED_PERCENT = 78
# The third set (issue 18 item 26) in two halves: tuned on its tune half (37/41 -> 41/41); its
# held-out half went from 47/52 to 50/52 (96%) with no look at its failures until then. Floors
# against regressions, no targets.
UNSEEN3_TUNE_REQUIRED_PERCENT = 100
UNSEEN3_HOLDOUT_REQUIRED_PERCENT = 96


def normalise(text: str) -> str:
    """Trailing spaces on each line and blank lines around the text do not count."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def corpus_cases(root: Path = REPLIES) -> dict[str, tuple[str, str]]:
    cases = {}
    for body in sorted(root.glob("*.txt")):
        if not body.name.endswith(".expected.txt"):
            name = body.name.removesuffix(".txt")
            expected = (root / f"{name}.expected.txt").read_text(encoding="utf-8")
            cases[name] = (body.read_text(encoding="utf-8"), expected)
    return cases


def misses(cases: dict[str, tuple[str, str]]) -> list[str]:
    """A diff of expected against got for every case `visible_reply` gets wrong."""
    failures = []
    for name, (body, expected) in cases.items():
        got = visible_reply(body)
        if normalise(got) != normalise(expected):
            diff = difflib.unified_diff(
                normalise(expected).splitlines(), normalise(got).splitlines(), lineterm=""
            )
            failures.append(f"--- {name}\n" + "\n".join(diff))
    return failures


def cpu_seconds(work: Callable[[], object]) -> float:
    """CPU time of `work`: other load on the machine does not count, as wall time would."""
    start = time.process_time()
    work()
    return time.process_time() - start


@pytest.fixture(scope="module")
def linear_budget() -> float:
    """CPU seconds a linear pass over a hostile megabyte may take on this machine: ten times
    a fixed loop of ten million additions (0.1 s on a laptop, 0.3 s on a busy CI runner).
    Quadratic work on a megabyte takes minutes, wherever it runs."""
    return 10 * min(cpu_seconds(lambda: sum(range(10_000_000))) for _ in range(3))


# -- The corpus ----------------------------------------------------------------------------


def test_the_public_corpus_scores_at_least_90_percent_exact_matches():
    cases = corpus_cases()
    failures = misses(cases)
    score = 1 - len(failures) / len(cases)
    print(f"\n{len(cases) - len(failures)}/{len(cases)} exact ({score:.0%})")
    print("\n\n".join(failures))
    assert len(cases) >= 60
    assert score >= REQUIRED_SCORE, f"{score:.0%} < {REQUIRED_SCORE:.0%}:\n" + "\n".join(failures)


def test_the_first_unseen_corpus_scores_at_least_95_percent_now_that_it_was_tuned_on():
    """Replies from sources the extractor was first measured on blind (tests/fixtures/email/
    unseen/, see SOURCES.md), then tuned on. The floor keeps the score from regressing."""
    cases = corpus_cases(UNSEEN)
    failures = misses(cases)
    right = len(cases) - len(failures)
    print(f"\nunseen: {right}/{len(cases)} exact ({right / len(cases):.0%})")
    print("\n\n".join(failures))
    assert len(cases) >= 60
    assert not set(cases) & set(corpus_cases()), "the unseen set shares cases with replies/"
    assert 100 * right >= UNSEEN_REQUIRED_PERCENT * len(cases), (
        f"{right}/{len(cases)} < {UNSEEN_REQUIRED_PERCENT}%:\n" + "\n".join(failures)
    )


def test_the_second_unseen_corpus_scores_at_least_what_was_measured_on_it_once():
    """Replies collected after the extractor was tuned (tests/fixtures/email/unseen2/, see
    SOURCES.md), their expected texts committed before it ever ran on them."""
    cases = corpus_cases(UNSEEN2)
    failures = misses(cases)
    right = len(cases) - len(failures)
    print(f"\nunseen2: {right}/{len(cases)} exact ({right / len(cases):.0%})")
    print("\n\n".join(failures))
    assert len(cases) >= 50
    assert not set(cases) & (set(corpus_cases()) | set(corpus_cases(UNSEEN)))
    assert 100 * right >= UNSEEN2_REQUIRED_PERCENT * len(cases), (
        f"{right}/{len(cases)} < {UNSEEN2_REQUIRED_PERCENT}%:\n" + "\n".join(failures)
    )


@pytest.mark.parametrize(
    ("half", "required"),
    [("tune", UNSEEN3_TUNE_REQUIRED_PERCENT), ("holdout", UNSEEN3_HOLDOUT_REQUIRED_PERCENT)],
)
def test_the_third_unseen_corpus_keeps_what_was_measured_on_each_half(half, required):
    """tests/fixtures/email/unseen3/ (SOURCES.md): expected texts and the tune / hold-out split
    committed before the extractor ran on them."""
    cases = corpus_cases(UNSEEN3)
    split = json.loads((UNSEEN3 / "split.json").read_text(encoding="utf-8"))
    assert not set(split["tune"]) & set(split["holdout"])
    assert set(split["tune"]) | set(split["holdout"]) == set(cases)
    earlier = set(corpus_cases()) | set(corpus_cases(UNSEEN)) | set(corpus_cases(UNSEEN2))
    assert not set(cases) & earlier, "the third set shares cases with an earlier one"
    chosen = {name: cases[name] for name in split[half]}
    failures = misses(chosen)
    right = len(chosen) - len(failures)
    print(f"\nunseen3 {half}: {right}/{len(chosen)} exact ({right / len(chosen):.0%})")
    print("\n\n".join(failures))
    assert 100 * right >= required * len(chosen), (
        f"{right}/{len(chosen)} < {required}%:\n" + "\n".join(failures)
    )


def test_the_split_manifest_puts_every_case_in_dev_or_holdout_once():
    split = json.loads((REPLIES / "split.json").read_text(encoding="utf-8"))
    dev, holdout = set(split["dev"]), set(split["holdout"])
    assert not dev & holdout
    assert dev | holdout == set(corpus_cases())
    assert len(holdout) * 3 >= len(dev | holdout) - 2  # about a third


# -- Reply headers ---------------------------------------------------------------------------

QUOTE = "\n\n> Can we move the site visit to Tuesday?\n> Thanks, Mike\n"


def test_it_strips_a_gmail_reply_header_and_its_quote():
    body = "Tuesday works.\n\nOn Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> wrote:" + QUOTE
    assert visible_reply(body) == "Tuesday works."


def test_it_strips_a_gmail_reply_header_wrapped_over_two_lines():
    body = (
        "Tuesday works.\n\nOn Mon, Jan 15, 2024 at 10:00 AM Mike Jones from Acme Roofing <\n"
        "mike.jones@acme-roofing.example.com> wrote:" + QUOTE
    )
    assert visible_reply(body) == "Tuesday works."


def test_it_strips_an_apple_mail_header_wrapped_over_three_lines():
    body = (
        "Tuesday works.\n\nOn Jan 15, 2024, at 10:00, Mike Jones\n<mike@acme.com>\nwrote:" + QUOTE
    )
    assert visible_reply(body) == "Tuesday works."


def test_it_strips_a_header_whose_quote_is_not_marked_with_angle_brackets():
    body = "Tuesday works.\n\nOn Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> wrote:\n\nOld"
    assert visible_reply(body) == "Tuesday works."


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, Jan 15, 2024 at 10:00 AM Mike Jones <mike@acme.com> wrote:",
        "Le lun. 15 janv. 2024 à 10:00, Mike Jones <mike@acme.com> a écrit :",
        "Am Mo., 15. Jan. 2024 um 10:00 Uhr schrieb Mike Jones <mike@acme.com>:",
        "Mike Jones <mike@acme.com> schrieb am Mo., 15. Jan. 2024, 10:00:",
        "El lun, 15 ene 2024 a las 10:00, Mike Jones (<mike@acme.com>) escribió:",
        "Il giorno lun 15 gen 2024 alle ore 10:00 Mike Jones <mike@acme.com> ha scritto:",
        "Op ma 15 jan. 2024 om 10:00 schreef Mike Jones <mike@acme.com>:",
        "Em seg., 15 de jan. de 2024 às 10:00, Mike Jones <mike@acme.com> escreveu:",
        "Den mån 15 jan. 2024 kl 10:00 skrev Mike Jones <mike@acme.com>:",
        "pon., 15 sty 2024 o 10:00 Mike Jones <mike@acme.com> napisał(a):",
        "пн, 15 янв. 2024 г. в 10:00, Mike Jones <mike@acme.com>:",
        "15.01.2024 10:00, Mike Jones пишет:",
        "2024年1月15日(月) 10:00 Mike Jones <mike@acme.com>:",
        "2024/01/15 10:00、Mike Jones <mike@acme.com>のメール:",
        "Mike Jones <mike@acme.com> 于2024年1月15日周一 10:00写道：",
    ],
    ids=[
        "en",
        "fr",
        "de",
        "de-date-last",
        "es",
        "it",
        "nl",
        "pt",
        "sv",
        "pl",
        "ru",
        "ru-pishet",
        "ja",
        "ja-apple",
        "zh",
    ],  # fmt: skip
)
def test_it_strips_each_languages_wrote_header(header):
    assert visible_reply(f"Tuesday works.\n\n{header}{QUOTE}") == "Tuesday works."
    # The history below a header need not be quoted (Outlook's plain text, some webmails).
    assert visible_reply(f"Tuesday works.\n\n{header}\n\nOld message") == "Tuesday works."


def test_it_keeps_a_paragraph_that_starts_with_on():
    body = "On Tuesday I can be there at 9.\n\nOn second thought, 10 is better."
    assert visible_reply(body) == body


def test_it_keeps_answers_written_between_quoted_blocks():
    body = (
        "On Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> wrote:\n"
        "> Tuesday or Wednesday?\n\nTuesday.\n\n> Morning or afternoon?\n\nMorning, please.\n"
    )
    assert visible_reply(body) == "Tuesday.\n\nMorning, please."


def test_it_keeps_answers_written_under_a_quote_after_a_top_posted_introduction():
    body = (
        "Hi Mike,\n\nSee below.\n\n\nOn Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> "
        "wrote:\n\n> Tuesday or Wednesday?\n>\n\n\nTuesday.\n\n> Morning or afternoon?\n\n"
        "Morning, please.\n\n\nSarah"
    )
    assert (
        visible_reply(body) == "Hi Mike,\n\nSee below.\n\nTuesday.\n\nMorning, please.\n\n\nSarah"
    )


def test_a_quoted_lines_wrapped_tail_or_a_footer_under_the_quote_is_not_an_answer():
    header = "Top reply.\n\nOn Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> wrote:\n"
    assert visible_reply(header + "> a long quoted line that got\nwrapped\n> here\n") == (
        "Top reply."
    )
    footer = "> Hi\n\n-- \nYou received this message because you are subscribed.\n"
    assert visible_reply(header + footer) == "Top reply."
    older = "> Hi\n\nOn Sun, Jan 14, 2024 at 9:00 AM Ann <ann@example.com> wrote:\n> Hello\n"
    assert visible_reply(header + older) == "Top reply."


def test_it_keeps_a_reply_written_below_the_quote():
    body = "On 15/01/2024 10:00, Mike wrote:\n> Tuesday or Wednesday?\nTuesday."
    assert visible_reply(body) == "Tuesday."


def test_a_reply_under_a_header_at_the_very_top_is_not_emptied():
    # Nothing written above the header, and no ">" marks what it introduces: emptying the
    # message would park her words for staff; what is under the header is kept instead.
    body = (
        "On Mon, Jan 15, 2024 at 10:00 AM, Mike <mike@acme.com> wrote:\n"
        "Can you do Tuesday?\n\nYes, Tuesday works."
    )
    assert visible_reply(body) == "Can you do Tuesday?\n\nYes, Tuesday works."
    # With a quote the header and the quote go, and the words above and below stay.
    quoted = "On Mon, Jan 15, 2024 at 10:00 AM, Mike <mike@acme.com> wrote:\n> Tuesday?\n"
    assert visible_reply(quoted + "\nYes, Tuesday works.") == "Yes, Tuesday works."
    assert visible_reply("Hi Mike,\n" + quoted + "\nYes.") == "Hi Mike,\n\nYes."
    # Words between a header at the top and the quote it introduces are hers too.
    header = "On Mon, Jan 15, 2024 at 10:00 AM, Mike <mike@acme.com> wrote:\n"
    assert visible_reply(header + "Yes, Tuesday.\n\n> Tuesday?") == "Yes, Tuesday."


@pytest.mark.parametrize(
    "header",
    [
        # Four lines (date, time, name, address): crisp-oss's email_thread shape, one more.
        "On Mon, Jan 15, 2024,\nat 10:00 AM,\nMike Example\n<mike@acme.com> wrote:",
        # Polymail: a blank line, the address on lines of its own, and a quoted "> wrote:".
        "On Tue, Apr 11, 2017 at 10:07 PM Mike Example\n\n<\nmailto:Mike <mike@acme.com>\n> wrote:",
    ],
)
def test_it_strips_a_reply_header_wrapped_over_more_than_three_lines(header):
    assert visible_reply(f"Tuesday works.\n\n{header}{QUOTE}") == "Tuesday works."
    assert visible_reply(f"Tuesday works.\n\n{header}\nOld unquoted message.") == ("Tuesday works.")


def test_a_paragraph_starting_with_on_and_a_date_is_not_a_long_header():
    body = "On Jan 15, at 10:00,\nthe crew arrives.\n\nAnn wrote:\nsee the note"
    assert visible_reply(body) == body
    # Lines of the sender's own above a bare attribution stay: no date, no address.
    own = "On Jan 15 we start\nbring the keys"
    assert visible_reply(f"{own}\nAnn wrote:\n> Which day?") == own
    own = "On Jan 15 at 10 we start\nplease\nbring the keys"
    assert visible_reply(f"{own}\nAnn wrote:\n> Which day?") == own


@pytest.mark.parametrize(
    "header",
    [
        "2013/7/20 sam via Porchlight <reply@porchlight.example>",
        "2011/4/7 Nathan <support@example.com>",
        "15.01.2024 Mike Example <mike@acme.com>",
    ],
)
def test_it_strips_a_header_that_starts_with_a_date_and_has_no_wrote(header):
    assert visible_reply(f"Tuesday works.\n\n{header}{QUOTE}") == "Tuesday works."


def test_a_date_line_of_the_senders_own_with_no_quote_under_it_is_kept():
    body = "Dates we can do:\n\n2024/1/15 morning <preferred>\n2024/1/16 afternoon"
    assert visible_reply(body) == body
    answer = "12/05/2024 works for me"
    assert visible_reply(f"{answer}\n> Which date suits you?") == answer


def test_the_senders_words_before_a_header_on_the_same_line_are_kept():
    # Some clients join the last line of the reply and the header (talon's fixtures).
    body = "reply On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:\n> Hi"
    assert visible_reply(body) == "reply"
    body = "reply\nbla-bla - bla--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> Hi"
    assert visible_reply(body) == "reply\nbla-bla - bla"


@pytest.mark.parametrize("attribution", ["Mike wrote:", "Mike Example <mike@acme.com> wrote:"])
def test_it_drops_an_attribution_with_nothing_after_it(attribution):
    # The client dropped the quote (or it was an HTML part) and left its attribution.
    assert visible_reply(f"Tuesday works.\n\n{attribution}\n") == "Tuesday works."
    assert visible_reply(f"Tuesday works.\n\n{attribution}{QUOTE}") == "Tuesday works."
    assert visible_reply(f"{attribution}{QUOTE}\nTuesday works.") == "Tuesday works."


def test_a_wrote_line_followed_by_the_senders_text_is_kept():
    # willdurand/EmailReplyParser's email_23_1: no date, no quote, text under it.
    body = "Hi.\n\nSomething wrote:\nthe rest of my message."
    assert visible_reply(body) == body


def test_lines_quoted_with_a_bar_are_history():
    body = "Tuesday works.\n\nOn Mon, Jan 15, 2024, Mike wrote:\n| Tuesday or Wednesday?\n| Mike"
    assert visible_reply(body) == "Tuesday works."
    inline = "On Mon, Jan 15, 2024, Mike wrote:\n| Tuesday or Wednesday?\n\nTuesday.\n"
    assert visible_reply(inline) == "Tuesday."


def test_a_table_row_with_bars_is_not_a_quote():
    body = "Prices:\n\n| item | cost |\n| deck | 4200 |\n\nOk?"
    assert visible_reply(body) == body


# -- Outlook blocks and separators -----------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        "From: Mike Jones <mike@acme.com>\nSent: Monday, January 15, 2024 10:00 AM\n"
        "To: Sarah <sarah@example.com>\nSubject: RE: Site visit",
        "________________________________\nFrom: Mike Jones <mike@acme.com>\n"
        "Sent: Monday, January 15, 2024 10:00 AM\nTo: Sarah\nSubject: Site visit",
        "De : Mike Jones <mike@acme.com>\nEnvoyé : lundi 15 janvier 2024 10:00\nÀ : Sarah\n"
        "Objet : Visite",
        "Von: Mike Jones <mike@acme.com>\nGesendet: Montag, 15. Januar 2024 10:00\nAn: Sarah\n"
        "Betreff: Besuch",
        "De: Mike Jones <mike@acme.com>\nEnviado el: lunes, 15 de enero de 2024 10:00\n"
        "Para: Sarah\nAsunto: Visita",
        "Da: Mike Jones <mike@acme.com>\nInviato: lunedì 15 gennaio 2024 10:00\nA: Sarah\n"
        "Oggetto: Visita",
        "Van: Mike Jones <mike@acme.com>\nVerzonden: maandag 15 januari 2024 10:00\n"
        "Aan: Sarah\nOnderwerp: Bezoek",
        "De: Mike Jones <mike@acme.com>\nEnviada em: segunda-feira, 15 de janeiro de 2024\n"
        "Para: Sarah\nAssunto: Visita",
        "Från: Mike Jones <mike@acme.com>\nSkickat: den 15 januari 2024 10:00\nTill: Sarah\n"
        "Ämne: Besök",
        "Od: Mike Jones <mike@acme.com>\nWysłano: poniedziałek, 15 stycznia 2024 10:00\n"
        "Do: Sarah\nTemat: Wizyta",
        "От: Mike Jones <mike@acme.com>\nОтправлено: 15 января 2024 г. 10:00\nКому: Sarah\n"
        "Тема: Визит",
        "发件人: Mike Jones <mike@acme.com>\n发送时间: 2024年1月15日 10:00\n收件人: Sarah\n"
        "主题: 拜访",
        "差出人: Mike Jones <mike@acme.com>\n送信日時: 2024年1月15日 10:00\n宛先: Sarah\n"
        "件名: 訪問",
        "From: Human Resources\n<a-very-long-address@acme.example.com>\nSent: Monday\nTo: Sarah",
        "Date: Mon, 15 Jan 2024 10:00:00 +0000\nFrom: mike@acme.com\nTo: sarah@example.com",
        "Feladó: Mike Jones <mike@acme.com>\nElküldve: 2024. január 15. 10:00\nCímzett: Sarah\n"
        "Tárgy: Látogatás",
        "Od: Mike Jones <mike@acme.com>\nOdesláno: pondělí 15. ledna 2024 10:00\nKomu: Sarah\n"
        "Předmět: Návštěva",
        "Od: Mike Jones <mike@acme.com>\nOdoslané: pondelok 15. januára 2024 10:00\n"
        "Komu: Sarah\nPredmet: Návšteva",
        "De la: Mike Jones <mike@acme.com>\nTrimis: luni, 15 ianuarie 2024 10:00\nCătre: Sarah\n"
        "Subiect: Vizită",
        "Από: Mike Jones <mike@acme.com>\nΕστάλη: Δευτέρα, 15 Ιανουαρίου 2024 10:00 πμ\n"
        "Προς: Sarah\nΘέμα: Επίσκεψη",
        "Kimden: Mike Jones <mike@acme.com>\nGönderildi: 15 Ocak 2024 Pazartesi 10:00\n"
        "Kime: Sarah\nKonu: Ziyaret",
        "Lähettäjä: Mike Jones <mike@acme.com>\nLähetetty: maanantai 15. tammikuuta 2024 10.00\n"
        "Vastaanottaja: Sarah\nAihe: Käynti",
        "Fra: Mike Jones <mike@acme.com>\nSendt: 15. januar 2024 10:00\nTil: Sarah\nEmne: Besøg",
        "Від: Mike Jones <mike@acme.com>\nНадіслано: 15 січня 2024 р. 10:00\nКому: Sarah\n"
        "Тема: Візит",
        "보낸 사람: Mike Jones <mike@acme.com>\n보낸 날짜: 2024년 1월 15일 월요일 오전 10:00\n"
        "받는 사람: Sarah\n제목: 방문",
        "من: Mike Jones <mike@acme.com>\nتم الإرسال: الاثنين، 15 يناير 2024 10:00 ص\nإلى: Sarah\n"
        "الموضوع: زيارة",
        "מאת: Mike Jones <mike@acme.com>\nנשלח: יום שני 15 ינואר 2024 10:00\nאל: Sarah\n"
        "נושא: ביקור",
    ],
    ids=[
        "en",
        "en-rule",
        "fr",
        "de",
        "es",
        "it",
        "nl",
        "pt",
        "sv",
        "pl",
        "ru",
        "zh",
        "ja",
        "wrapped-from",
        "date-first",
        "hu",
        "cs",
        "sk",
        "ro",
        "el",
        "tr",
        "fi",
        "da-no",
        "uk",
        "ko",
        "ar",
        "he",
    ],  # fmt: skip
)
def test_it_strips_an_outlook_header_block(block):
    body = f"Tuesday works.\n\n{block}\n\nCan we move the site visit?\n"
    assert visible_reply(body) == "Tuesday works."


def test_a_line_starting_with_from_is_not_an_outlook_block():
    body = "From: the back door, please.\nThe gate is locked."
    assert visible_reply(body) == body


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "----- Original Message -----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
        "-----Mensaje original-----",
        "-----Messaggio originale-----",
        "-----Oorspronkelijk bericht-----",
        "-------- Mensagem original --------",
        "---------- Forwarded message ---------",
        "---------- Weitergeleitete Nachricht ---------",
        "Begin forwarded message:",
        "Anfang der weitergeleiteten Nachricht:",
        "---- On Mon, 15 Jan 2024 10:00:00 +0000 mike@acme.com wrote ----",
    ],
)
def test_it_strips_original_message_and_forwarded_blocks(separator):
    body = f"See below.\n\n{separator}\nFrom: Mike\nOld message\n"
    assert visible_reply(body) == "See below."


@pytest.mark.parametrize(
    "separator",
    [
        "*-------- Original Message --------*",
        "*-----Original Message-----*",
        "**---------- Forwarded message ---------**",
        "_-------- Message d'origine --------_",
    ],
)
def test_it_strips_a_bold_original_message_separator(separator):
    # An HTML part turned to text writes <b> as asterisks.
    body = f"See below.\n\n{separator}\nSubject: Roof\n\nOld message\n"
    assert visible_reply(body) == "See below."


def test_text_framed_by_dashes_that_is_no_separator_is_kept():
    # talon's test_feedback_below_left_unparsed: a form the sender filled in.
    body = (
        "Please enter your feedback below. Thank you.\n\n"
        "------------- Enter Feedback Below -------------\n\nThe deck looks great."
    )
    assert visible_reply(body) == body


def test_a_header_block_that_starts_with_its_date_is_history():
    body = "Blah\n\nDate: Wed, 16 May 2012 00:15:02 -0600\nTo: sarah@example.com\n\nOld"
    assert visible_reply(body) == "Blah"
    appointment = "Visit:\n\nDate: Wednesday 3 October\nTime: 7:00am\nAddress: 130 Fox St"
    assert visible_reply(appointment) == appointment


def test_a_forward_with_nothing_written_above_it_keeps_the_forwarded_message():
    # Better to show staff what was forwarded than an empty message.
    body = "---------- Forwarded message ---------\nFrom: Mike <mike@acme.com>\n\nOld message"
    assert visible_reply(body) == "Old message"
    body = (
        "Begin forwarded message:\n\nFrom: Mike <mike@acme.com>\nSubject: Roof\n"
        "Date: 15 January 2024 at 10:00:00 GMT\nTo: Sarah <sarah@example.com>\n\nThe roof leaks."
    )
    assert visible_reply(body) == "The roof leaks."


def test_a_message_that_starts_with_its_own_header_block_keeps_the_text_under_it():
    body = (
        "Od: Jan Kowalski <jan@example.com>\r\nWysłano: środa, 1 marca 2023 12:00\r\n"
        "Do: Anna Nowak <anna@example.com>\r\nTemat: Test\r\n\r\nCześć Anno,\r\n\r\n"
        "Jak się masz?\r\n\r\nDnia 28 lutego 2023 14:00 Anna <anna@example.com> napisał(a):\r\n"
        "> Cześć Janie\r\n"
    )
    assert visible_reply(body) == "Cześć Anno,\n\nJak się masz?"


def test_a_header_block_at_the_top_without_a_blank_line_under_it_keeps_the_next_line():
    body = "From: Mike <mike@acme.com>\nSent: Monday\nSubject: Roof\nHello Sarah,\nIt leaks."
    assert visible_reply(body) == "Hello Sarah,\nIt leaks."


def test_a_header_block_below_a_skipped_quote_is_still_history():
    body = (
        "On Mon, Jan 15, 2024 at 10:00 AM Mike <mike@acme.com> wrote:\n> Hi\n\n"
        "From: Ann <ann@example.com>\nSent: Sunday\nTo: Mike\n\nOlder message"
    )
    assert visible_reply(body) == ""


@pytest.mark.parametrize(
    "marker",
    [
        "##- Please type your reply above this line -##",
        "-- Reply above this line to respond --",
        "Please reply above this line",
        "## Bitte geben Sie Ihre Antwort oberhalb dieser Zeile ein ##",
    ],
)
def test_it_ends_the_reply_at_a_reply_above_this_line_marker(marker):
    body = f"Tuesday works.\n\n{marker}\n\nYour request (123) has been updated."
    assert visible_reply(body) == "Tuesday works."


def test_a_line_of_dashes_in_the_senders_text_is_kept():
    body = "Item      Price\n------------------\nShingles  $40\nNails     $5\n\nOk?"
    assert visible_reply(body) == body


# -- Signatures and taglines -----------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_it_strips_a_signature_after_the_delimiter(delimiter):
    body = f"See you Tuesday.\n\n{delimiter}\nSarah Smith\n555-0100\n"
    assert visible_reply(body) == "See you Tuesday."


def test_it_strips_a_long_signature_after_the_delimiter():
    signature = "\n".join(
        f"Line {n} of a long company signature and its disclaimer" for n in range(9)
    )
    assert visible_reply(f"See you Tuesday.\n-- \n{signature}") == "See you Tuesday."


def test_it_keeps_a_double_dash_in_the_middle_of_a_line():
    body = "The fix -- a new flashing -- worked.\n-- and so did the gutter."
    assert visible_reply(body) == body


def test_it_drops_a_signature_block_under_a_closing_and_keeps_a_closing_with_a_name():
    assert visible_reply("Thanks!\n\nBest regards,\nSarah") == "Thanks!\n\nBest regards,\nSarah"
    body = "Thanks!\n\nKind regards,\n\nSarah Smith\nOffice manager\nSmith & Co"
    assert visible_reply(body) == "Thanks!"


def test_it_keeps_sentences_under_a_thanks_or_a_rule():
    body = "Thanks!\nWe will be home at 9.\nThe gate code is 1234."
    assert visible_reply(body) == body
    body = "Notes from today\n\n--------------------\nThe gutter needs a new bracket."
    assert visible_reply(body) == body


@pytest.mark.parametrize(
    "closing",
    [
        "Mvh,",
        "Med vennlig hilsen",
        "Mit freundlichen Grüßen",
        "Cordialement,",
        "Saludos,",
        "Cordiali saluti",
        "Pozdrawiam,",
        "S pozdravem,",
        "Üdvözlettel,",
        "Terveisin",
        "С уважением,",
    ],
)
def test_it_drops_a_closing_followed_by_a_name_and_a_phone_number_in_each_language(closing):
    body = f"See you Tuesday.\n\n{closing}\nSarah Smith\n+45 12 34 56 78"
    assert visible_reply(body) == "See you Tuesday."
    # A closing with just a name is what the person wrote.
    assert visible_reply(f"See you Tuesday.\n\n{closing}\nSarah") == (
        f"See you Tuesday.\n\n{closing}\nSarah"
    )


@pytest.mark.parametrize(
    "disclaimer",
    [
        "Disclaimer\n\nThe information contained in this communication is confidential.",
        "CONFIDENTIALITY NOTICE: This e-mail is for the sole use of the intended recipient.",
        "This email and any files transmitted with it are confidential and intended solely for "
        "the addressee.",
        "If you are not the intended recipient, please delete this message.",
        "This email has been scanned for viruses and malware.",
        "Please consider the environment before printing this email.",
        "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen.",
    ],
)
def test_it_drops_a_legal_or_virus_scan_disclaimer_under_the_sign_off(disclaimer):
    body = f"See you Tuesday.\n\nSarah\n\n\n{disclaimer}\n\nMore small print."
    assert visible_reply(body) == "See you Tuesday.\n\nSarah"


def test_a_sentence_of_the_senders_that_starts_like_a_disclaimer_is_kept():
    body = "If you are not home, leave the key under the mat.\n\nThis email is to confirm Tuesday."
    assert visible_reply(body) == body


@pytest.mark.parametrize(
    "tagline",
    [
        "Sent from my iPhone",
        "Sent from my Android",
        "Sent from my Samsung Galaxy smartphone.",
        "Sent from Outlook",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Get Outlook for Android",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Gesendet von Outlook für Android<https://aka.ms/AAb9ysg>",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Enviado do meu iPhone",
        "Skickat från min iPhone",
        "Wysłane z iPhone'a",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
    ],
)
def test_it_strips_each_languages_device_tagline(tagline):
    assert visible_reply(f"See you Tuesday.\n\n{tagline}") == "See you Tuesday."
    assert visible_reply(f"See you Tuesday.\n\n{tagline}\n\n> Old message") == "See you Tuesday."


def test_it_keeps_a_sentence_that_starts_with_sent_from():
    body = "Sent from my desk, this is easier than from my phone."
    assert visible_reply(body) == body


# -- Banners and notices above the message --------------------------------------------------


@pytest.mark.parametrize(
    "banner",
    [
        "CAUTION: This email originated from outside of the organization. Do not click links or "
        "open attachments unless you recognize the sender and know the content is safe.",
        "CAUTION: This email originated from outside of the organization. Do not click links or\n"
        "open attachments unless you recognize the sender and know the content is safe.",
        "[EXTERNAL]",
        "[EXTERNAL] This message came from outside your organization.",
        "EXTERNAL EMAIL: Use caution with links and attachments.",
        "WARNING: This email was sent from outside the company.",
        "You don't often get email from mike@acme.com. Learn why this is important"
        "<https://aka.ms/LearnAboutSenderIdentification>",
    ],
)
def test_it_drops_an_external_sender_banner_above_the_message(banner):
    assert visible_reply(f"{banner}\n\nHi Sarah,\nTuesday works.") == "Hi Sarah,\nTuesday works."


def test_a_warning_the_sender_wrote_at_the_top_is_kept():
    body = "Warning: the gate is broken.\nAttention: Sarah\n\nExternal paint is fine."
    assert visible_reply(body) == body


def test_it_drops_a_help_desk_notice_and_a_pasted_subject_line_above_the_message():
    body = (
        "FW: Arrival notice ETA: 2020-06-08\n"
        'This is a follow-up to your previous request #12345 "RE: Arrival..."\n'
        "Hello team,\nCan I get the notice?"
    )
    assert visible_reply(body) == "Hello team,\nCan I get the notice?"
    assert visible_reply("Subject: Booking\n\nCan we move it?") == "Can we move it?"


def test_a_first_line_starting_with_re_is_kept():
    body = "Re: the quote, yes go ahead."
    assert visible_reply(body) == body


# -- The sender's own text -------------------------------------------------------------------


def test_it_keeps_the_senders_own_blank_lines():
    body = "First paragraph.\n\n\nAfter two blank lines.\n\nLast one."
    assert (
        visible_reply(f"{body}\n\nOn Mon, Jan 15, 2024 at 10:00 Mike <m@acme.com> wrote:") == body
    )


def test_it_keeps_the_senders_lists_indentation_and_urls():
    body = (
        "Photos: https://photos.example.com/album?id=42&x=1\n\n- gutter\n- flashing\n"
        "    * left side\n1. Tuesday"
    )
    assert visible_reply(f"{body}\n\n> quoted") == body


def test_it_merges_the_blank_lines_left_where_a_quote_was():
    body = "First.\n\n> quoted\n> more\n\nSecond."
    assert visible_reply(body) == "First.\n\nSecond."


def test_an_all_quote_body_is_empty():
    assert visible_reply("> Can we move the visit?\n>\n> Mike\n") == ""
    assert visible_reply("On Mon, Jan 15, 2024 at 10:00 Mike <m@acme.com> wrote:\n> Hi") == ""
    assert visible_reply("") == ""
    assert visible_reply("  \n\n \t\n") == ""


def test_it_trims_surrounding_whitespace_and_reads_windows_line_ends():
    body = (
        "\r\n\r\n  Tuesday works.  \r\n\r\nOn Mon, Jan 15, 2024 at 10:00 Mike <m@acme.com> wrote:"
    )
    assert visible_reply(body + "\r\n> Hi\r\n") == "Tuesday works."


# -- HTML --------------------------------------------------------------------------------------


def html_cases() -> list[Path]:
    return sorted(HTML.glob("*.html"))


@pytest.mark.parametrize("path", html_cases(), ids=lambda path: path.stem)
def test_html_bodies_of_the_corpus_give_the_reply(path):
    expected = (HTML / f"{path.stem}.expected.txt").read_text(encoding="utf-8")
    html = path.read_text(encoding="utf-8")
    assert normalise(visible_reply(html_to_text(html))) == normalise(expected)


def test_html_to_text_on_a_gmail_reply():
    html = (
        '<div dir="ltr">Tuesday works.<div><br></div><div>Sarah</div></div><br>'
        '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        "On Mon, Jan 15, 2024 at 10:00\u202fAM Mike &lt;mike@acme.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">'
        "<div>Can we move the visit?</div></blockquote></div>"
    )
    assert html_to_text(html) == "Tuesday works.\n\nSarah\n\n> Can we move the visit?"
    assert visible_reply(html_to_text(html)) == "Tuesday works.\n\nSarah"


def test_html_to_text_on_an_outlook_web_reply():
    html = (
        '<div style="font-family: Aptos">Tuesday works.</div>'
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg"><b>From:</b> Mike<br><b>Sent:</b> Monday</div>'
        "<div>Can we move the visit?</div>"
    )
    assert html_to_text(html) == "Tuesday works."


def test_html_to_text_on_an_apple_mail_reply():
    html = (
        '<html><body><div>Tuesday works.</div><div><br><blockquote type="cite">'
        "<div>On Jan 15, 2024, at 10:00, Mike &lt;mike@acme.com&gt; wrote:</div>"
        '</blockquote></div><blockquote type="cite"><div>Can we move the visit?</div>'
        "</blockquote></body></html>"
    )
    assert visible_reply(html_to_text(html)) == "Tuesday works."


def test_html_to_text_drops_head_scripts_styles_and_signatures():
    html = (
        "<html><head><title>Re: visit</title><style>p{color:red}</style></head><body>"
        "<script>alert(1)</script><p>Tuesday works.</p>"
        '<div class="gmail_signature"><div>Sarah Smith</div><div>555-0100</div></div>'
        "</body></html>"
    )
    assert html_to_text(html) == "Tuesday works."


def test_html_to_text_decodes_entities_and_keeps_line_breaks_and_paragraphs():
    html = "<p>Fish &amp; chips&nbsp;&lt;3</p><p>Line one<br>Line two</p><ul><li>a</li></ul>"
    assert html_to_text(html) == "Fish & chips <3\n\nLine one\nLine two\n\n- a"


def test_html_to_text_reads_text_whatever_the_declared_charset():
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Crème brûlée</p></body></html>'
    assert html_to_text(html) == "Crème brûlée"


def test_html_to_text_of_nothing_is_empty():
    assert html_to_text("") == ""
    assert html_to_text("<html><body></body></html>") == ""


# -- Time ------------------------------------------------------------------------------------

MB = 1_000_000


def test_a_1_mb_reply_takes_well_under_a_second():
    prose = "We can start on the roof on Tuesday; the gutters need another look.\n" * 7_500
    history = "".join(
        f"On Mon, Jan {n % 28 + 1}, 2024 at 10:00 Mike <mike@acme.com> wrote:\n"
        "> Can we move the site visit? The forecast says rain all week.\n" * 3
        for n in range(2_000)
    )
    body = (prose + "\n" + history)[:MB]
    assert len(body) == MB
    assert cpu_seconds(lambda: visible_reply(body)) < 0.5
    assert visible_reply(body) == prose.strip()


@pytest.mark.parametrize(
    "body",
    [
        "a" * MB,
        "a\n" * (MB // 2),
        "\n" * MB,
        ">" * MB,
        "> quoted\n" * (MB // 9),
        "-\n" * (MB // 2),
        "Sent: Monday\n" * (MB // 13),
        "Note 10:00 2024:\n" * (MB // 17),
        "On 2024 Mike <a@b.co> wrote\n" * (MB // 28),
        "x@" * (MB // 2),
        "---x" + "-" * MB,
        "On " + "1 " * (MB // 2) + "wrote:\n> x",
        "Tuesday\n" + ("<" * 390 + "@a.b 10:00:\n") * (MB // 403),
        "From: a\nSent: b\n" * (MB // 16),
        "---x---\n" * (MB // 8),
        "FW: x\n" * (MB // 6),
        "CAUTION: this email originated from outside\n" * (MB // 45),
        "x\n" + "If you are not the intended recipient\n" * (MB // 38),
        "Hi\n\n" + "On 2024 Mike <a@b.co> wrote:\n> q\n\nanswer\n\n" * (MB // 45),
        "Hi\n\nOn 2024 Mike <a@b.co> wrote:\n" + "> q\n\n" * (MB // 5) + "x",
        "On 1 2\n\n<\n> wrote:\n" * (MB // 19),
        "| a\n|\n| b |\n" * (MB // 12),
        "x " * 40 + "On 2024 a@b.c wrote:\n> q\n" * (MB // 24),
        "2013/7/20 sam via x <a@b.c>\n> q\nx wrote:\n" * (MB // 40),
    ],
    ids=[
        "one-line",
        "short-lines",
        "blank-lines",
        "angle-brackets",
        "all-quoted",
        "dashes",
        "outlook-fields",
        "header-like",
        "wrote-lines",
        "at-signs",
        "framed-dashes",
        "long-header",
        "brackets-and-addresses",
        "outlook-blocks",
        "separators-at-the-top",
        "pasted-subjects",
        "banners",
        "disclaimers",
        "interleaved-answers",
        "long-quote-then-text",
        "long-wrapped-headers",
        "bar-quotes-and-tables",
        "words-before-headers",
        "date-headers-and-attributions",
    ],  # fmt: skip
)
def test_a_hostile_1_mb_body_stays_linear(body, linear_budget):
    assert cpu_seconds(lambda: visible_reply(body)) < linear_budget


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * (5 * MB // 5),
        "<blockquote>x" * (5 * MB // 13),
        "<p>Hello world</p>" * (5 * MB // 18),
        "<!--" * (5 * MB // 4),
        "<a " * (5 * MB // 3),
        "<" * (5 * MB),
        "</" * (5 * MB // 2),
        "&amp" * (5 * MB // 4),
        '<a title="' + "x>" * (5 * MB // 2),
        "<br>" * (5 * MB // 4),
        "<script>" + "<" * (5 * MB),
    ],
    ids=[
        "nested-divs",
        "nested-quotes",
        "paragraphs",
        "unclosed-comments",
        "unclosed-tags",
        "angle-brackets",
        "end-tag-openers",
        "entities",
        "unclosed-attribute",
        "line-breaks",
        "unclosed-script",
    ],  # fmt: skip
)
def test_html_to_text_is_safe_on_a_hostile_5_mb_body(html, linear_budget):
    assert len(html) >= 4 * MB
    assert cpu_seconds(lambda: html_to_text(html)) < linear_budget
