"""Reply-extraction benchmark: how many replies of the public corpus does each candidate get
exactly right?

    .venv/bin/python -m bench.reply_corpus                 # the table
    .venv/bin/python -m bench.reply_corpus --failures      # ours, dev failures, as diffs
    .venv/bin/python -m bench.reply_corpus --failures --holdout   # only once tuning is over
    .venv/bin/python -m bench.reply_corpus --failures --unseen    # the unseen set's misses
    .venv/bin/python -m bench.reply_corpus --failures --unseen2   # the second unseen set's
    .venv/bin/python -m bench.reply_corpus --failures --unseen3   # the third set's tune half
    .venv/bin/python -m bench.reply_corpus --failures --unseen3-holdout   # only once tuning is over

The corpus is `tests/fixtures/email/replies/` (see its SOURCES.md); `split.json` there says
which cases are dev and which holdout. `tests/fixtures/email/unseen/` is a third set, from
other sources, measured blind once and tuned on since; `tests/fixtures/email/unseen2/` a fourth,
collected after that tuning and scored once; `tests/fixtures/email/unseen3/` a fifth, from
sources none of them uses, split in `unseen3/split.json` into a half tuned on and a half held
out. Each is its own column, not part of "total".
A case counts when the candidate's text equals the expected one after both are normalised
the same way (`normalise` below).

Candidates other than ours are optional: a library that is not installed is listed as such.
To measure them all, in a throwaway virtualenv:

    pip install email-reply-parser mail-parser-reply talon

Exit status 0 whatever the scores.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "email"
CORPUS = FIXTURES / "replies"
UNSEEN = FIXTURES / "unseen"
UNSEEN2 = FIXTURES / "unseen2"
UNSEEN3 = FIXTURES / "unseen3"

# Every language mail-parser-reply 1.36 knows, so that it is not judged on English alone.
MAIL_PARSER_REPLY_LANGUAGES = [
    "en", "de", "fr", "it", "es", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh",
]  # fmt: skip


def normalise(text: str | None) -> str:
    """Line endings unified, trailing spaces dropped, blank lines around the text dropped."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def load_cases(root: Path) -> dict[str, tuple[str, str]]:
    """{case: (body, expected)} for every `<case>.txt` with its `<case>.expected.txt`."""
    cases = {}
    for body_path in sorted(root.glob("*.txt")):
        if body_path.name.endswith(".expected.txt"):
            continue
        name = body_path.name.removesuffix(".txt")
        expected = (root / f"{name}.expected.txt").read_text(encoding="utf-8")
        cases[name] = (body_path.read_text(encoding="utf-8"), expected)
    return cases


def load_corpus(root: Path = CORPUS) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """({case: (body, expected)}, {"dev": [...], "holdout": [...]})."""
    cases = load_cases(root)
    split = json.loads((root / "split.json").read_text(encoding="utf-8"))
    return cases, {"dev": split["dev"], "holdout": split["holdout"]}


def load_unseen3(root: Path = UNSEEN3) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """({case: (body, expected)}, {"tune": [...], "holdout": [...]})."""
    cases = load_cases(root)
    split = json.loads((root / "split.json").read_text(encoding="utf-8"))
    return cases, {"tune": split["tune"], "holdout": split["holdout"]}


def candidates() -> dict[str, Callable[[str], str] | str]:
    """Name -> extraction function, or the reason it cannot run here."""
    found: dict[str, Callable[[str], str] | str] = {}

    from notifications.inbound.reply_text import visible_reply

    found["porchlight visible_reply"] = visible_reply

    try:
        from email_reply_parser import EmailReplyParser as Zapier

        found["email-reply-parser (zapier) parse_reply"] = Zapier.parse_reply
    except ImportError:
        found["email-reply-parser (zapier) parse_reply"] = "not installed"

    try:
        from mailparser_reply import EmailReplyParser as MailParserReply

        parser = MailParserReply(languages=MAIL_PARSER_REPLY_LANGUAGES)

        def mpr_latest(text: str) -> str:
            return parser.parse_reply(text=text) or ""

        def mpr_body(text: str) -> str:
            replies = parser.read(text=text).replies
            return replies[0].body if replies else ""

        found["mail-parser-reply latest_reply"] = mpr_latest
        found["mail-parser-reply replies[0].body"] = mpr_body
    except ImportError:
        found["mail-parser-reply latest_reply"] = "not installed"

    try:
        import talon
        from talon import quotations
        from talon.signature.bruteforce import extract_signature

        talon.init()

        def talon_quotes(text: str) -> str:
            return quotations.extract_from_plain(text)

        def talon_quotes_and_signature(text: str) -> str:
            return extract_signature(quotations.extract_from_plain(text))[0]

        found["talon extract_from_plain"] = talon_quotes
        found["talon extract_from_plain + signature"] = talon_quotes_and_signature
    except ImportError:
        found["talon extract_from_plain"] = "not installed"
    return found


def score(
    extract: Callable[[str], str], cases: dict[str, tuple[str, str]], names: list[str]
) -> list[str]:
    """The names of the cases `extract` gets wrong (an exception counts as wrong)."""
    wrong = []
    for name in names:
        body, expected = cases[name]
        try:
            got = extract(body)
        except Exception:  # a library crashing on a real email is a miss, not a stop
            got = "<exception>"
        if normalise(got) != normalise(expected):
            wrong.append(name)
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failures", action="store_true", help="print ours' failures as diffs")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--holdout", action="store_true", help="with --failures: the holdout's, not dev's"
    )
    which.add_argument(
        "--unseen", action="store_true", help="with --failures: the unseen set's, not dev's"
    )
    which.add_argument(
        "--unseen2", action="store_true", help="with --failures: the second unseen set's"
    )
    which.add_argument(
        "--unseen3", action="store_true", help="with --failures: the third set's tune half"
    )
    which.add_argument(
        "--unseen3-holdout",
        action="store_true",
        help="with --failures: the third set's held-out half (once tuning is over)",
    )
    args = parser.parse_args(argv)

    cases, split = load_corpus()
    unseen = load_cases(UNSEEN)
    unseen2 = load_cases(UNSEEN2)
    unseen3, split3 = load_unseen3()
    every = split["dev"] + split["holdout"]
    print(
        f"corpus: {len(cases)} cases, dev {len(split['dev'])}, holdout {len(split['holdout'])}; "
        f"unseen: {len(unseen)} cases; unseen2: {len(unseen2)} cases; unseen3: "
        f"{len(unseen3)} cases, tune {len(split3['tune'])}, holdout {len(split3['holdout'])}"
    )
    columns = ("dev", "holdout", "total", "unseen", "unseen2", "unseen3 tune", "unseen3 hold")
    print(f"| {'candidate':42} | " + " | ".join(f"{c:>13}" for c in columns) + " |")
    print(f"| {'-' * 42} | " + " | ".join("-" * 13 for _ in columns) + " |")
    for label, extract in candidates().items():
        if isinstance(extract, str):
            print(
                f"| {label:42} | {extract:>13} | "
                + " | ".join(f"{'':>13}" for _ in columns[1:])
                + " |"
            )
            continue
        cells = []
        for names, pool in (
            (split["dev"], cases),
            (split["holdout"], cases),
            (every, cases),
            (sorted(unseen), unseen),
            (sorted(unseen2), unseen2),
            (split3["tune"], unseen3),
            (split3["holdout"], unseen3),
        ):
            right = len(names) - len(score(extract, pool, names))
            cells.append(f"{right}/{len(names)} {100 * right / len(names):3.0f}%")
        print(f"| {label:42} | " + " | ".join(f"{cell:>13}" for cell in cells) + " |")

    if args.failures:
        from notifications.inbound.reply_text import visible_reply

        if args.unseen:
            cases, names = unseen, sorted(unseen)
        elif args.unseen2:
            cases, names = unseen2, sorted(unseen2)
        elif args.unseen3:
            cases, names = unseen3, split3["tune"]
        elif args.unseen3_holdout:
            cases, names = unseen3, split3["holdout"]
        else:
            names = split["holdout"] if args.holdout else split["dev"]
        for name in score(visible_reply, cases, names):
            body, expected = cases[name]
            got = normalise(visible_reply(body))
            print(f"\n=== {name}")
            sys.stdout.writelines(
                difflib.unified_diff(
                    normalise(expected).splitlines(True),
                    got.splitlines(True),
                    "expected",
                    "got",
                    lineterm="\n",
                )
            )
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
