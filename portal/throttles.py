"""Rate limits (django-ratelimit): how often one client, one address or one person may do
something that costs us or them (an email, a password guess, a message).

Counters live in the default cache: Redis when REDIS_URL is set, so every web process shares
them; the process's own memory under `make run`, which is one process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    group: str
    key: str  # "ip", "user", or "value": counted per the value passed in
    setting: str  # the setting holding the rate, e.g. "3/10m"
    # With the counters' cache unreachable (Redis down): allow (True) or let the error out.
    fail_open: bool = False

    def exceeded(self, request: HttpRequest, *, value: str = "", count: bool = True) -> bool:
        """Whether this request is over the limit; `count` False only looks."""
        key = (lambda group, request: value.casefold()) if self.key == "value" else self.key
        try:
            return is_ratelimited(
                request,
                group=self.group,
                key=key,
                rate=getattr(settings, self.setting),
                increment=count,
            )
        except Exception as error:  # the cache backend's own errors (redis-py's)
            if not self.fail_open:
                raise
            logger.warning("rate limit %s not counted: cache %s", self.group, type(error).__name__)
            return False


# Sign-in links: each request may send an email.
LOGIN_LINKS_PER_CLIENT = Limit("login-link-client", "ip", "RATE_LOGIN_LINKS_PER_CLIENT")
LOGIN_LINKS_PER_ADDRESS = Limit("login-link-address", "value", "RATE_LOGIN_LINKS_PER_ADDRESS")
MAGIC_LINK_POSTS = Limit("magic-link-client", "ip", "RATE_LOGIN_LINKS_PER_CLIENT")
# Staff passwords: failures only are counted; past the limit even the right password waits.
STAFF_FAILURES_PER_USERNAME = Limit("staff-login-user", "value", "RATE_STAFF_LOGIN_FAILURES")
STAFF_FAILURES_PER_CLIENT = Limit(
    "staff-login-client", "ip", "RATE_STAFF_LOGIN_FAILURES_PER_CLIENT"
)
# Messages sent from the portal, per person (a runaway script, a stuck key).
# Open when Redis is down: a message must still be sent then (DESIGN, "Nothing lost"); the
# limit only guards against a runaway client. The sign-in limits stay closed: an error, never
# unlimited guesses.
SENDS_PER_USER = Limit("sends", "user", "RATE_SENDS_PER_USER", fail_open=True)


def staff_locked_out(request: HttpRequest, *, username: str) -> bool:
    """Too many failed passwords for this username, or from this client, lately."""
    return STAFF_FAILURES_PER_USERNAME.exceeded(
        request, value=username, count=False
    ) or STAFF_FAILURES_PER_CLIENT.exceeded(request, count=False)


def record_staff_failure(request: HttpRequest, *, username: str) -> None:
    STAFF_FAILURES_PER_USERNAME.exceeded(request, value=username)
    STAFF_FAILURES_PER_CLIENT.exceeded(request)
