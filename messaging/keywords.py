"""Keywords a customer can send as a whole message ("CONFIRM"), and who acts on them.

A tiny registry so that apps act on replies without messaging knowing about them: an app
registers a handler for a word in its AppConfig.ready(), and `messaging.actions` calls
`dispatch` for each newly created customer reply, inside the append's transaction (so what
the handler writes commits or rolls back with the reply). Replays of a reply do not dispatch.
Opt-out words (STOP, START, HELP) are the SMS provider's business, not registered here.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messaging.models import Entry
    from portal.models import Customer

logger = logging.getLogger(__name__)

# handler(*, entry, customer) -> bool: whether it claimed the reply.
Handler = Callable[..., bool]

_handlers: dict[str, Handler] = {}

# Punctuation customers put around a keyword ("Confirm!", "'CONFIRM'", "confirm.").
_SURROUNDING = string.punctuation + "\u2018\u2019\u201c\u201d\u00a1\u00bf\u2026"


def normalise(body: str) -> str:
    """The keyword a body would be: trimmed, casefolded, surrounding punctuation dropped."""
    return (body or "").strip().strip(_SURROUNDING).strip().casefold()


def register(word: str, handler: Handler) -> None:
    """Call `handler(entry=..., customer=...)` for replies that are exactly `word`.
    Registering the same word again replaces the handler (ready() may run twice in tests)."""
    key = normalise(word)
    if not key or any(ch.isspace() for ch in key):
        raise ValueError(f"A keyword is one word: {word!r}")
    _handlers[key] = handler


def dispatch(*, entry: Entry, customer: Customer) -> bool:
    """Run the handler registered for the reply's body, if any. Returns whether one claimed
    it. Runs inside the reply's append transaction; a handler that raises rolls back the
    reply too, so handlers answer bad situations with a message, not an exception."""
    handler = _handlers.get(normalise(entry.body))
    if handler is None:
        return False
    return bool(handler(entry=entry, customer=customer))
