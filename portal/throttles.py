"""Rate limits (django-ratelimit): how often one client, one address or one person may do
something that costs us or them (an email, a password guess, a message).

Counters live in the default cache: Redis when REDIS_URL is set, so every web process shares
them; the process's own memory under `make run`, which is one process.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    group: str
    key: str  # "ip", "user", or "value": counted per the value passed in
    setting: str  # the setting holding the rate, e.g. "3/10m"
    # With the counters' cache unreachable (Redis down): allow (True) or let the error out.
    fail_open: bool = False

    def exceeded(self, request: HttpRequest, *, value: str = "", count: bool = True) -> bool:
        """Whether this request is over the limit; `count` False only looks. `value` must
        already be in the form the thing it limits is looked up by (staff_username_key,
        portal.queries.login_address): a variant spelling is otherwise a fresh counter."""
        key = (lambda group, request: value) if self.key == "value" else self.key
        try:
            usage = get_usage(
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
        if usage is None:
            return False
        if count:
            return usage["should_limit"]
        # Looking before acting: the attempt about to be made is number count + 1, so "5/15m"
        # allows 5 (django-ratelimit's own `count > limit` let a sixth through).
        return usage["count"] >= usage["limit"]


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
# CSP reports: anyone may post them; each one is a log line.
CSP_REPORTS_PER_CLIENT = Limit("csp-reports", "ip", "RATE_CSP_REPORTS_PER_CLIENT")


def staff_username_key(raw: str) -> str:
    """The username a staff sign-in counts against: what the sign-in form authenticates
    with (Django's UsernameField strips, then NFKC-normalises, so " mike", "mike\u3000" and
    full-width "ｍｉｋｅ" all sign in as mike), case-folded so "Mike" shares mike's counter."""
    value = raw.strip()
    if len(value) > 150:  # the form refuses it before anyone is authenticated
        return value[:150].casefold()
    return unicodedata.normalize("NFKC", value).strip().casefold()


def staff_locked_out(request: HttpRequest, *, username: str) -> bool:
    """Too many failed passwords for this username, or from this client, lately."""
    return STAFF_FAILURES_PER_USERNAME.exceeded(
        request, value=staff_username_key(username), count=False
    ) or STAFF_FAILURES_PER_CLIENT.exceeded(request, count=False)


def record_staff_failure(request: HttpRequest, *, username: str) -> None:
    STAFF_FAILURES_PER_USERNAME.exceeded(request, value=staff_username_key(username))
    STAFF_FAILURES_PER_CLIENT.exceeded(request)


# -- Sign-in codes (issue 20) -------------------------------------------------------------------
# Each code request may send an SMS or an email: per address, per client and for the whole
# site (one constant key), so that neither one number nor many numbers can be flooded.
CODES_PER_ADDRESS = Limit("sign-in-code-address", "value", "RATE_SIGN_IN_CODES_PER_ADDRESS")
CODES_PER_CLIENT = Limit("sign-in-code-client", "ip", "RATE_SIGN_IN_CODES_PER_CLIENT")
CODES_GLOBAL = Limit("sign-in-code-all", "value", "RATE_SIGN_IN_CODES_GLOBAL")
# Every guess counts, right or wrong, for known and unknown addresses alike.
GUESSES_PER_ADDRESS = Limit("code-guess-address", "value", "RATE_CODE_GUESSES_PER_ADDRESS")
GUESSES_PER_CLIENT = Limit("code-guess-client", "ip", "RATE_CODE_GUESSES_PER_CLIENT")
GUESSES_GLOBAL = Limit("code-guess-all", "value", "RATE_CODE_GUESSES_GLOBAL")
_EVERYONE = "*"


def code_request_refused(request: HttpRequest, *, address: str) -> bool:
    """Count one code request; True when any of its limits is already spent. All three are
    counted (no short-circuit), so a flood from one client still fills the global count."""
    over = [
        CODES_PER_CLIENT.exceeded(request),
        CODES_PER_ADDRESS.exceeded(request, value=address),
        CODES_GLOBAL.exceeded(request, value=_EVERYONE),
    ]
    return any(over)


def code_guess_refused(request: HttpRequest, *, address: str) -> bool:
    """Count one guess at a code; True when any of its limits is already spent."""
    over = [
        GUESSES_PER_CLIENT.exceeded(request),
        GUESSES_PER_ADDRESS.exceeded(request, value=address),
        GUESSES_GLOBAL.exceeded(request, value=_EVERYONE),
    ]
    return any(over)
