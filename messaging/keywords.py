"""Keywords a customer can send as a whole message, and who acts on them: every one of them
(CONFIRM, the carrier's STOP / START / HELP and their kin, any added later) registers here.

A tiny registry so that apps act on replies without messaging knowing about them: an app
registers a handler for a word in its AppConfig.ready() (crm_events: CONFIRM; notifications:
the carrier words, for texts only), and `messaging.actions` calls `dispatch` for each newly
created customer reply, inside the append's transaction (so what the handler writes commits
or rolls back with the reply). Replays of a reply do not dispatch, nor do replies recorded
with `notify=False` (history: an old CONFIRM confirms nothing today).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messaging.models import Entry
    from portal.models import Customer

logger = logging.getLogger(__name__)

# handler(*, entry, customer); what it returns is ignored.
Handler = Callable[..., object]

_handlers: dict[str, Handler] = {}
# The channels a word counts on, for words that do not count everywhere (a carrier's STOP
# means something only in a text); a word absent here counts on every channel.
_channels: dict[str, frozenset[str]] = {}

# Punctuation customers put around a keyword ("Confirm!", "'CONFIRM'", "confirm.").
_SURROUNDING = string.punctuation + "\u2018\u2019\u201c\u201d\u00a1\u00bf\u2026"


def normalise(body: str) -> str:
    """The keyword a body would be: trimmed, casefolded, surrounding punctuation dropped."""
    return (body or "").strip().strip(_SURROUNDING).strip().casefold()


def register(word: str, handler: Handler, *, channels: Iterable[str] | None = None) -> None:
    """Call `handler(entry=..., customer=...)` for replies that are exactly `word`, on any
    channel or only on `channels` (Entry.Channel values). Registering the same word again
    replaces the handler (ready() may run twice in tests)."""
    key = normalise(word)
    if not key or any(ch.isspace() for ch in key):
        raise ValueError(f"A keyword is one word: {word!r}")
    _handlers[key] = handler
    if channels is None:
        _channels.pop(key, None)
    else:
        _channels[key] = frozenset(channels)


def _word(body: str) -> str:
    """The registered word a body is, or "". A word spelled with spaces inside counts too:
    carriers treat "OPT OUT" as OPTOUT, and customers write "stop all"."""
    word = normalise(body)
    if word in _handlers:
        return word
    joined = "".join(word.split())
    return joined if joined in _handlers else ""


def dispatch(*, entry: Entry, customer: Customer) -> None:
    """Run the handler registered for the reply's body on its channel, if any. Runs inside
    the reply's append transaction; a handler that raises rolls back the reply too, so
    handlers answer bad situations with a message, not an exception."""
    word = _word(entry.body)
    if not word or entry.channel not in _channels.get(word, {entry.channel}):
        return
    _handlers[word](entry=entry, customer=customer)
