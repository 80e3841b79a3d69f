"""One-click unsubscribe links (RFC 8058) in the emails customers get.

The link names the customer and carries an HMAC of their id (SECRET_KEY): it works without
signing in, as RFC 8058 requires (mail providers POST it themselves, with no cookies), and it
is stable, so the link in any email they ever got keeps working. Guessing another customer's
link means guessing 96 bits. What it can do is narrow: turn that customer's email
notifications off, which they can turn back on in their settings.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "notifications.unsubscribe"
_SIGNATURE_LENGTH = 24


def _signature(customer_id: int, secret: str | None = None) -> str:
    digest = salted_hmac(_SALT, str(customer_id), secret=secret, algorithm="sha256")
    return digest.hexdigest()[:_SIGNATURE_LENGTH]


def unsubscribe_token(customer_id: int) -> str:
    return f"{customer_id}.{_signature(customer_id)}"


def unsubscribe_path(customer_id: int) -> str:
    return reverse("email_unsubscribe", args=[unsubscribe_token(customer_id)])


def customer_id_from_token(token: str) -> int | None:
    """The customer a token names, if its signature checks (under SECRET_KEY or one of
    SECRET_KEY_FALLBACKS, so a rotation does not break old emails' links); else None."""
    number, _, given = token.partition(".")
    if not (number.isascii() and number.isdigit()) or len(number) > 18:
        return None
    customer_id = int(number)
    for secret in [None, *settings.SECRET_KEY_FALLBACKS]:
        if constant_time_compare(given.lower(), _signature(customer_id, secret)):
            return customer_id
    return None
