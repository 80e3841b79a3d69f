"""How staff are named to each other, and @names in internal notes: which staff members a
note mentions.

A mention is "@" and a staff member's username ("@kim"), matched without regard to case, not
inside a word or an email address ("kim@example.com" mentions no one). A name that is no
active staff member's stays plain text. Read by notifications (who is told) and by the
staff timeline (which names are shown as mentions)."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import Q

# Django usernames take letters, digits and @.+-_; a sentence's full stop after the name
# ("ask @kim.") is not part of it.
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]*\w)")
MAX_MENTIONS = 20


def staff_name(user) -> str:
    """A staff member as colleagues see them on entries and notifications: first name, else
    username ("Kim · Internal note"). Customers never see it: they see the business's name."""
    if user is None:
        return ""
    return user.first_name or user.get_username()


def mentioned_names(text: str) -> list[str]:
    """The names after "@" in `text`, lower-cased, each once, in order of appearance."""
    names = dict.fromkeys(m.group(1).lower() for m in _MENTION.finditer(text or ""))
    return list(names)[:MAX_MENTIONS]


def mentioned_staff(text: str) -> list:
    """The active staff members `text` mentions, each once (one query, none without an @)."""
    names = mentioned_names(text)
    if not names:
        return []
    User = get_user_model()
    users = User.objects.filter(is_active=True, is_staff=True)
    any_name = Q()
    for name in names:
        any_name |= Q(username__iexact=name)
    found = {u.username.lower(): u for u in users.filter(any_name)}
    return [found[name] for name in names if name in found]
