"""Request bodies over their route's limit are answered 413 by the ASGI application itself,
before Django reads them (it spools every body to a temporary file before any view runs):
declared too large, unread; chunked, cut off where it runs over."""

from __future__ import annotations

import asyncio
import tempfile

import pytest

from portal.asgi import application
from portal.body_limits import DEFAULT_MAX_BYTES, max_body_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _call(path: str, chunks, *, headers=(), method="POST"):
    """Run one HTTP request through the real ASGI application; returns (status, body, how
    many body bytes it asked for)."""
    sent, asked = [], 0
    queue = list(chunks)

    async def receive():
        nonlocal asked
        if not queue:
            await asyncio.sleep(3600)  # a client that never finishes, and never leaves
        chunk = queue.pop(0)
        asked += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(asyncio.wait_for(application(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, asked


def _chunked(total: int, size: int = 64 * 1024):
    full, rest = divmod(total, size)
    return [b"x" * size] * full + ([b"x" * rest] if rest else [])


def test_a_chunked_body_over_the_routes_limit_is_cut_off_with_a_413_before_any_view(
    monkeypatch, tmp_path
):
    # Django's own spool would roll over to disk here: nothing may be written.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    status, body, asked = _call("/csp-report/", _chunked(600 * 1024 * 1024))
    assert status == 413 and b"at most 64 KB" in body
    assert asked <= 64 * 1024 + 64 * 1024  # read up to the chunk that ran over, no further
    assert list(tmp_path.iterdir()) == []


def test_a_declared_length_over_the_limit_is_refused_unread():
    status, _, asked = _call(
        "/login/", [b"x"], headers=[(b"content-length", str(600 * 1024 * 1024).encode())]
    )
    assert (status, asked) == (413, 0)


def test_a_content_length_that_is_not_a_number_is_a_400():
    status, _, asked = _call("/login/", [b"x"], headers=[(b"content-length", b"-1")])
    assert (status, asked) == (400, 0)


def test_a_body_within_its_limit_reaches_the_view():
    status, _, _ = _call("/csp-report/", [b'{"csp-report": {}}'])
    assert status == 204


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/csp-report/", 64 * 1024),
        ("/webhooks/twilio/sms/", 64 * 1024),
        ("/webhooks/twilio/status/", 64 * 1024),
        ("/anymail/postmark/inbound/", 50 * 1024 * 1024),
        ("/anymail/postmark/tracking/", DEFAULT_MAX_BYTES),
        ("/messages/send/", 26 * 1024 * 1024),
        ("/staff/chat/12/send/", 26 * 1024 * 1024),
        ("/requests/new/", 26 * 1024 * 1024),
        ("/admin/portal/business/1/change/", 10 * 1024 * 1024),
        ("/api/crm/events/", DEFAULT_MAX_BYTES),
        ("/login/", DEFAULT_MAX_BYTES),
    ],
)
def test_each_route_takes_its_own_largest_body(path, limit):
    assert max_body_bytes(path) == limit


def test_the_largest_email_postmark_sends_gets_through_the_inbound_limit():
    # Postmark: up to 35 MB of attachments per inbound email, base64 in its JSON.
    largest = 35 * 1024 * 1024 * 4 // 3 + 1024 * 1024
    assert max_body_bytes("/anymail/postmark/inbound/") >= largest
