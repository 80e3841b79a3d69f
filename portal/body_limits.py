"""The most a request body may hold, per route, enforced in the app server before Django
reads a byte of it.

Django's ASGI handler reads the whole body into a temporary file before any middleware or
view runs, so a view's own limit comes too late: a chunked 600 MB POST to /csp-report/ was a
567 MB file on disk before the view refused it. `BodyLimit` wraps the ASGI application: a
declared Content-Length over the route's limit is answered 413 at once, unread; a body that
runs over while it streams in (chunked, or longer than declared) is cut off there, and
answered 413 without Django ever seeing a request. The proxy in front (deploy/Caddyfile)
refuses the same sizes; this is the limit that holds without it (make run, a misconfigured
proxy, a web process reached directly).
"""

from __future__ import annotations

import re

from django.conf import settings

KB = 1024
MB = 1024 * KB

# Anything not listed below: forms, the CRM event API, push subscriptions, status callbacks.
DEFAULT_MAX_BYTES = 1 * MB
# Twilio's webhooks are form posts of one text: 1,600 characters of body and ten media URLs.
TWILIO_MAX_BYTES = 64 * KB
# The Django admin: a business's logo is its largest upload.
ADMIN_MAX_BYTES = 10 * MB
# A CSP report (portal.security.MAX_REPORT_BYTES).
CSP_REPORT_MAX_BYTES = 64 * KB


def _reply_box_max_bytes() -> int:
    # Five files of 5 MB each, with the words and the multipart framing around them.
    return settings.ATTACHMENTS_PER_MESSAGE * settings.ATTACHMENT_MAX_BYTES + 1 * MB


# (path pattern, the largest body it takes); the first match decides.
ROUTES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"^/csp-report/$"), lambda: CSP_REPORT_MAX_BYTES),
    (re.compile(r"^/webhooks/twilio/"), lambda: TWILIO_MAX_BYTES),
    # Inbound email carries its attachments (the ESP's JSON, base64): INBOUND_EMAIL_MAX_BYTES.
    (re.compile(r"^/anymail/[^/]+/inbound/$"), lambda: settings.INBOUND_EMAIL_MAX_BYTES),
    (re.compile(r"^/messages/send/$"), _reply_box_max_bytes),
    # A work request: five photos, like the reply box.
    (re.compile(r"^/requests/new/$"), _reply_box_max_bytes),
    (re.compile(r"^/staff/chat/\d+/send/$"), _reply_box_max_bytes),
    (re.compile(r"^/admin/"), lambda: ADMIN_MAX_BYTES),
]


def max_body_bytes(path: str) -> int:
    """The largest request body the route at `path` accepts."""
    for pattern, limit in ROUTES:
        if pattern.match(path):
            return limit()
    return DEFAULT_MAX_BYTES


class BodyLimit:
    """ASGI middleware: HTTP request bodies over their route's limit are answered 413."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = max_body_bytes(scope["path"])
        declared = _content_length(scope)
        if declared is None:
            return await _answer(send, 400, "Content-Length is not a number.")
        if declared > limit:
            return await _answer(send, 413, _too_large(limit))

        received = 0
        cut_off = False
        started = False

        async def counted_receive():
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django's handler stops reading at a disconnect and answers nothing;
                    # the 413 is then ours to send.
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if cut_off and not started:
            await _answer(send, 413, _too_large(limit))


def _content_length(scope) -> int | None:
    """The declared length (0 when none is declared, as with chunked bodies); None when it is
    not a plain non-negative number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return 0


def _too_large(limit: int) -> str:
    size = f"{limit // MB} MB" if limit >= MB else f"{limit // KB} KB"
    return f"This request is too large: at most {size} here."


async def _answer(send, status: int, text: str) -> None:
    # Connection: close, since the rest of the body is left unread.
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text.encode() + b"\n"})
