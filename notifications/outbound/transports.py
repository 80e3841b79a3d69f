"""One transport per provider. Each `send()` returns the provider's id for what it sent, or
raises `TransportError(message, permanent=...)`; the caller decides retry versus record from
that flag alone. Transports never touch the database, and are only ever called outside a
transaction (they wait on the network).

- SMS: `TwilioSms` (the twilio client, its base URL a setting) or `ConsoleSms` (logs).
- Email: `EmailTransport` over Django's mail API, so any backend works: an anymail ESP in
  production, the console by default, locmem in tests.
- Push: `WebPushTransport` (pywebpush with VAPID); off when no keys are configured.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from notifications.safe_http import PrivateAddressRefused, allowed_url, public_session

logger = logging.getLogger(__name__)

# Twilio's cap on a message body (it splits into segments up to this many characters).
SMS_MAX_LENGTH = 1600

# Twilio error codes (https://www.twilio.com/docs/api/errors) that say "try again later".
TWILIO_TRANSIENT_CODES = frozenset(
    {
        20429,  # too many requests
        30001,  # queue overflow
        30003,  # unreachable destination handset (off, out of coverage)
        30008,  # unknown error
    }
)
# The code whose meaning we act on besides recording it: the number replied STOP.
TWILIO_UNSUBSCRIBED = 21610


class TransportError(Exception):
    """A send that did not happen. `permanent` errors are recorded and never retried;
    others are retried with backoff. `code` is the provider's own error code, if any."""

    def __init__(self, message: str, *, permanent: bool, code: int | str | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code


def _transient_http_status(status: int | None) -> bool:
    # No status: the request never got an answer (timeout, refused connection).
    return status is None or status in (408, 425, 429) or status >= 500


# -- SMS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """A file fetched from the provider (a photo texted to us)."""

    data: bytes
    content_type: str


class SmsTransport:
    def send(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        media_urls: Sequence[str] = (),
    ) -> str:
        raise NotImplementedError

    def fetch_media(self, url: str) -> Media:
        raise TransportError("No SMS provider is configured to fetch media from", permanent=True)


class ConsoleSms(SmsTransport):
    """No Twilio credentials: write the SMS to the log, as Django's console email backend
    does for mail, so `make run` shows what would have gone."""

    def send(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        media_urls: Sequence[str] = (),
    ) -> str:
        sid = f"console-{uuid.uuid4().hex[:16]}"
        photos = "".join(f"\n[photo] {url}" for url in media_urls)
        logger.info("SMS (console) to %s [%s]:\n%s%s", to, sid, body, photos)
        return sid


class _BaseUrlHttpClient(TwilioHttpClient):
    """The twilio client builds absolute https://api.twilio.com/... URLs; this client sends
    them to TWILIO_API_BASE_URL instead (a regional proxy, or the fake Twilio in tests),
    keeping the path and query."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._prefix = parts.path.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )
        return super().request(method, url, *args, **kwargs)


class TwilioSms(SmsTransport):
    """SMS through Twilio's Messages API with the official client."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str,
        timeout: float,
    ):
        http_client = _BaseUrlHttpClient(base_url, timeout=timeout)
        self.client = TwilioClient(account_sid, auth_token, http_client=http_client)
        self.from_number = from_number
        self.auth = (account_sid, auth_token)
        self.timeout = timeout
        # Media URLs come in webhooks: fetch them only from Twilio's hosts (and, in tests, the
        # fake's listed loopback address), only from public addresses.
        self.api_host = urlsplit(base_url).hostname or "api.twilio.com"
        self.media_hosts = twilio_media_hosts()
        self.media_session = public_session(self.media_hosts)

    def send(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        media_urls: Sequence[str] = (),
    ) -> str:
        params = {"to": to, "from_": self.from_number, "body": body}
        if status_callback:
            params["status_callback"] = status_callback
        if media_urls:
            params["media_url"] = list(media_urls)
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            # exc.msg starts with the client's own "Unable to create record:" prefix.
            reason = str(exc.msg).removeprefix("Unable to create record: ")
            raise _twilio_error(status=exc.status, code=exc.code, reason=reason) from exc
        except TwilioServiceException as exc:  # the newer RFC 9457 error shape
            reason = exc.detail or exc.title
            raise _twilio_error(status=exc.status, code=exc.code, reason=reason) from exc
        except TwilioException as exc:
            raise TransportError(f"Twilio: {exc}", permanent=False) from exc
        except ValueError as exc:  # a 2xx whose body is not the JSON it should be
            raise TransportError(
                "Twilio answered something that is not JSON", permanent=False
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"Twilio did not answer: {type(exc).__name__}", permanent=False
            ) from exc
        return message.sid

    def fetch_media(self, url: str) -> Media:
        """A photo Twilio received (MediaUrlN): with the account's credentials, from Twilio's
        hosts only, following redirects only to Twilio's hosts, at most
        ATTACHMENT_MAX_BYTES, and all of it within media_deadline() seconds."""
        limit = settings.ATTACHMENT_MAX_BYTES
        seconds = media_deadline()
        deadline = time.monotonic() + seconds
        late = TransportError(f"Twilio media: not fetched within {seconds:g} s", permanent=False)
        for hop in range(4):  # the URL and up to three redirects (Twilio redirects to its CDN)
            if not allowed_url(url, self.media_hosts):
                raise TransportError(f"Media not on a Twilio host: {url[:120]}", permanent=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise late
            # The account's credentials go with the MediaUrl itself, on the API's host, and
            # never to where it redirects (a pre-signed CDN URL that needs none).
            first = hop == 0 and urlsplit(url).hostname == self.api_host
            auth = self.auth if first else None
            try:
                response = self.media_session.get(
                    url,
                    auth=auth,
                    timeout=min(self.timeout, remaining),
                    stream=True,
                    allow_redirects=False,
                )
            except PrivateAddressRefused as exc:
                raise TransportError(
                    "Media host is not on the public internet", permanent=True
                ) from exc
            except requests.RequestException as exc:
                raise TransportError(
                    f"Twilio media: {type(exc).__name__}", permanent=False
                ) from exc
            with response, _cut_off_at(deadline, response) as cut_off:
                if response.is_redirect:
                    url = requests.compat.urljoin(url, response.headers.get("Location", ""))
                    continue
                if response.status_code != 200:
                    raise TransportError(
                        f"Twilio media answered {response.status_code}",
                        permanent=not _transient_http_status(response.status_code),
                        code=response.status_code,
                    )
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > limit:
                    raise TransportError(
                        f"Media of {declared:,} bytes is too large", permanent=True
                    )
                data = bytearray()
                try:
                    for chunk in response.iter_content(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            raise TransportError("Media is too large", permanent=True)
                except requests.RequestException as exc:
                    if cut_off.is_set():
                        raise late from exc
                    raise TransportError(
                        f"Twilio media: {type(exc).__name__}", permanent=False
                    ) from exc
                if cut_off.is_set():  # the socket shut mid-body reads as a short body
                    raise late
                content_type = response.headers.get("Content-Type", "")
                return Media(data=bytes(data), content_type=content_type.split(";")[0].strip())
        raise TransportError("Media redirected too many times", permanent=True)


def media_deadline() -> float:
    """Seconds one photo's fetch may take in all, redirects included."""
    return 2 * settings.NOTIFICATIONS_PROVIDER_TIMEOUT


@contextmanager
def _cut_off_at(deadline: float, response: requests.Response) -> Iterator[threading.Event]:
    """Shut the response's socket at `deadline`, whatever the read is waiting for. Timeouts
    apply to each read: a server sending a byte a second never trips one, and held a fetch
    (and its worker) for as long as it liked. The event says whether it fired."""
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def twilio_media_hosts() -> tuple[str, ...]:
    """Hosts a MediaUrl may point at: Twilio's (TWILIO_MEDIA_HOSTS) and the API's own."""
    api_host = urlsplit(settings.TWILIO_API_BASE_URL).hostname or "api.twilio.com"
    return (*settings.TWILIO_MEDIA_HOSTS, api_host)


def _twilio_error(*, status: int, code: int | None, reason: str) -> TransportError:
    # Without an error code in the body the client reports the HTTP status as the code.
    code = code if isinstance(code, int) and code != status else None
    message = f"Twilio {code or status}: {reason}"
    # Rate limits, Twilio's own 5xx and the codes that say "later" are worth retrying;
    # anything else (21211 invalid number, 21610 unsubscribed, 30006 landline, 21408 region
    # not enabled, 20003 bad credentials) fails the same way every time.
    transient = code in TWILIO_TRANSIENT_CODES or _transient_http_status(status)
    return TransportError(message, permanent=not transient, code=code or status)


# -- Email -------------------------------------------------------------------------------------


class EmailTransport:
    """Email through Django's configured backend (EMAIL_BACKEND): an anymail ESP backend in
    production, the console by default. Returns the ESP's message id when it gives one (its
    tracking webhooks carry that id), otherwise our own Message-ID."""

    def send(self, message: EmailMultiAlternatives) -> str:
        if settings.EMAIL_BACKEND.startswith("anymail."):
            # One open anymail backend per thread: its requests session keeps the HTTP
            # connection to the ESP, where a backend per send opened a session and a TCP
            # connection per email. (SMTP's connection is not kept: a server that hangs up
            # would leave it broken for every later send.)
            message.connection = _anymail_connection(
                settings.EMAIL_BACKEND, repr(getattr(settings, "ANYMAIL", None))
            )
        else:
            message.connection = get_connection(fail_silently=False)
        try:
            message.send(fail_silently=False)
        except AnymailRecipientsRefused as exc:
            raise TransportError(
                f"The email provider refused the address: {_first_line(exc)}", permanent=True
            ) from exc
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            raise TransportError(
                f"Email provider error{f' {status}' if status else ''}: {_first_line(exc)}",
                permanent=not _transient_http_status(status),
                code=status,
            ) from exc
        except AnymailError as exc:  # invalid address, unsupported feature: our data is wrong
            raise TransportError(f"Email not sendable: {_first_line(exc)}", permanent=True) from exc
        except OSError as exc:  # SMTP backends: connection refused, timeouts
            raise TransportError(f"Email server unreachable: {exc}", permanent=False) from exc
        status = getattr(message, "anymail_status", None)
        if status is not None and status.message_id:
            # One recipient per message, so message_id is a single id, not a set.
            return str(status.message_id)
        return message.extra_headers.get("Message-ID", "")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- Web Push ----------------------------------------------------------------------------------


class WebPushTransport:
    """Web Push with VAPID through pywebpush. Every call sets TTL, Urgency and a timeout."""

    def __init__(
        self, *, private_key: str, subject: str, timeout: float, listed_hosts: tuple[str, ...]
    ):
        from py_vapid import Vapid

        # Parsed once: pywebpush would otherwise re-parse the key on every send.
        self.vapid = Vapid.from_string(private_key=private_key)
        self.subject = subject
        self.timeout = timeout
        # Endpoints come from browsers, that is from users: connect to public addresses only.
        self.session = public_session(listed_hosts)

    def send(self, *, subscription: dict, payload: dict, ttl: int, urgency: str) -> str:
        """Send one notification to one subscription. Returns the push service's message
        location (its id for the message) when it gives one."""
        from pywebpush import WebPushException, webpush

        try:
            # A stored subscription whose keys cannot be used fails here, before any request.
            check_subscription_keys(subscription)
            response = webpush(
                subscription_info=subscription,
                data=json.dumps(payload, separators=(",", ":")),
                vapid_private_key=self.vapid,
                # A fresh dict every call: pywebpush writes aud and exp into it.
                vapid_claims={"sub": self.subject},
                ttl=ttl,
                headers={"Urgency": urgency},
                timeout=self.timeout,
                requests_session=self.session,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            reason = f"push service answered {status}" if status else "push service unreachable"
            # 404/410: the subscription is gone; 413: our payload is too big for it; other
            # 4xx (bad VAPID, malformed): resending the same request changes nothing.
            permanent = status is not None and not _transient_http_status(status)
            raise TransportError(reason, permanent=permanent, code=status) from exc
        except PrivateAddressRefused as exc:
            raise TransportError(
                "The device's push endpoint is not on the public internet; device removed",
                permanent=True,
                code="private-address",
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"push service did not answer: {type(exc).__name__}", permanent=False
            ) from exc
        return response.headers.get("Location", "")


# The push service no longer knows the subscription: forget the device. "bad-keys": its keys
# cannot encrypt anything, so it cannot ever receive; "private-address": it points inside our
# network, never at a push service. Forget those too.
GONE_STATUSES = frozenset({404, 410, "bad-keys", "private-address"})


def check_subscription_keys(subscription: dict) -> None:
    """Raise a permanent TransportError unless the subscription's keys can be used: a P-256
    public key and a 16-byte auth secret, base64url."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        keys = subscription["keys"]
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url(keys["p256dh"]))
        if len(_b64url(keys["auth"])) != 16:
            raise ValueError("auth secret is not 16 bytes")
    except (KeyError, TypeError, ValueError) as exc:
        raise TransportError(
            "The device's push keys are unusable; device removed", permanent=True, code="bad-keys"
        ) from exc


def _b64url(value: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# -- Choosing transports from settings ---------------------------------------------------------


def sms_transport() -> SmsTransport:
    if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER:
        return _twilio(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE_URL,
            settings.NOTIFICATIONS_PROVIDER_TIMEOUT,
        )
    return ConsoleSms()


_per_thread = threading.local()


def _per_thread_cache(factory):
    """Like functools.cache, but one instance per thread: each client keeps an HTTP session
    whose connections are reused, and the worker runs its tasks on threads (docker-compose.yml):
    a session shared by dozens of threads would keep only its pool's 10 connections and open
    a new one for every other send."""

    def cached(*key):
        instances = _per_thread.__dict__.setdefault(factory.__name__, {})
        if key not in instances:
            instances[key] = factory(*key)
        return instances[key]

    def cache_clear() -> None:  # this thread's, as tests change settings
        _per_thread.__dict__.pop(factory.__name__, None)

    cached.cache_clear = cache_clear
    return cached


@_per_thread_cache
def _twilio(sid: str, token: str, from_number: str, base_url: str, timeout: float) -> TwilioSms:
    return TwilioSms(
        account_sid=sid,
        auth_token=token,
        from_number=from_number,
        base_url=base_url,
        timeout=timeout,
    )


def warm_up() -> None:
    """Import now what the Twilio and Web Push clients import on their first send: the
    worker calls this before it takes tasks, so that its first sends do not each pay
    for it (a fifth of the worker's CPU over 900 sends; docs/performance.md, "perf2")."""
    import pywebpush  # noqa: F401
    from twilio.rest.api.v2010.account import message  # noqa: F401


@_per_thread_cache
def _anymail_connection(backend: str, options: str):
    """`options` is the ANYMAIL settings' repr: tests and settings changes make a new one."""
    connection = get_connection(backend, fail_silently=False)
    connection.open()  # open, so send_messages() leaves it open after each send
    return connection


def email_transport() -> EmailTransport:
    return EmailTransport()


def push_configured() -> bool:
    return bool(settings.VAPID_PUBLIC_KEY and settings.VAPID_PRIVATE_KEY)


def push_transport() -> WebPushTransport | None:
    if not push_configured():
        return None
    return _webpush(
        settings.VAPID_PRIVATE_KEY,
        settings.VAPID_SUBJECT,
        settings.NOTIFICATIONS_PROVIDER_TIMEOUT,
        tuple(settings.WEB_PUSH_ENDPOINT_HOSTS),
    )


@_per_thread_cache
def _webpush(
    private_key: str, subject: str, timeout: float, listed_hosts: tuple[str, ...]
) -> WebPushTransport:
    return WebPushTransport(
        private_key=private_key, subject=subject, timeout=timeout, listed_hosts=listed_hosts
    )
