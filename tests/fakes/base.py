"""A small threaded HTTP server on 127.0.0.1 that records requests and answers from a script.

Each fake provider subclasses `FakeServer` and implements `respond()`. Tests (and people, via
`python -m tests.fakes`) drive it with:

- `requests` — every request received, in order (method, path, headers, body);
- `script(Reply(...), ...)` — answers for the next requests, before the default one;
- `hold_next()` — the next request blocks until `release()` (a provider that hangs), then
  the connection is dropped without an answer;
- `wait_for(n)` — block until n requests have arrived;
- `latency` — seconds every answer waits before going out (a provider's own service time;
  bench.deliveries sets it), on top of a scripted reply's `delay`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    # When the reply was written: (answered_at - at) is the provider's own service time.
    answered_at: float | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}

    def json(self):
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


@dataclass
class Reply:
    status: int
    body: dict | list | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    trickle: float = 0.0  # seconds between the body's bytes (a server that never finishes)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "text/plain"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class _Server(ThreadingHTTPServer):
    # A worker with dozens of threads opens dozens of connections at once: the default
    # backlog of 5 made the kernel drop SYNs, and each dropped one cost the client a
    # 1-second retransmit that no provider would charge.
    request_queue_size = 128


class _Drop(Exception):
    """Close the connection without answering."""


class FakeServer:
    name = "fake"

    def __init__(self, *, port: int = 0, verbose: bool = False, latency: float = 0.0):
        self.latency = latency
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._hold: threading.Event | None = None
        self._held = threading.Event()
        self.verbose = verbose
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- driving it -----------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def hold_next(self) -> None:
        """The next request waits until `release()`, then gets no answer at all."""
        self._hold = threading.Event()
        self._held.clear()

    def wait_until_held(self, timeout: float = 10) -> bool:
        return self._held.wait(timeout)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def wait_for(self, count: int, timeout: float = 10) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name}: {len(self.requests)} requests arrived, expected {count}"
                    )
                self._arrived.wait(left)
            return list(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    # -- subclass API ---------------------------------------------------------------------

    def respond(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def describe(self, request: Recorded) -> str:
        return f"{request.method} {request.path}"

    # -- plumbing -------------------------------------------------------------------------

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        return scripted if scripted is not None else self.respond(request)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Recorded(
            method=handler.command, path=handler.path, headers=dict(handler.headers), body=body
        )
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
        if self.verbose:
            print(f"[{self.name}] {self.describe(request)}", flush=True)
        hold = self._hold
        if hold is not None:
            self._hold = None
            self._held.set()
            hold.wait()
            raise _Drop
        reply = self._next_reply(request)
        if reply.delay or self.latency:
            time.sleep(reply.delay + self.latency)
        payload, content_type = reply.encoded()
        handler.send_response(reply.status)
        headers = {"Content-Type": content_type, **reply.headers}
        headers["Content-Length"] = str(len(payload))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if reply.trickle:
            for byte in payload:
                try:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                except OSError:  # the client gave up
                    raise _Drop from None
                time.sleep(reply.trickle)
        else:
            handler.wfile.write(payload)
        request.answered_at = time.time()

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the second waits
            # for the client's delayed ACK (40 ms), which is not the provider's latency.
            disable_nagle_algorithm = True

            def _any(self) -> None:
                try:
                    fake._handle(self)
                except _Drop:
                    self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base signature
                pass

        return Handler
