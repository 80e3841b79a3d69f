"""R12: 600 MB request bodies (issue 18 item 4) -> 413 before they reach disk.

Before: a chunked 600 MB POST to /csp-report/ became a 567 MB temporary file: Django's ASGI
handler spools every body before any view runs, and nothing limited it.

The real ASGI server (uvicorn, tests/servers.py) with a temporary directory of its own
(TMPDIR), watched every 20 ms for the largest total it reaches; a raw socket client sends
600 MB to /csp-report/ (a) chunked, 64 KB at a time, until the server answers, and (b) with
Content-Length: 600 MB declared, waiting half a second for an answer to the headers alone
before sending the body. Measured: the answer, how many bytes the client got to send
before it, the server's temporary files at their largest, its peak memory over what it held
before (VmHWM, reset first), and the time. Then the same two through Caddy (deploy/Caddyfile)
in front of it, when Debian's caddy is installed.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.images import peak_rss_mb, peak_rss_reset
from tests.servers import UNLIMITED_RATES, AsgiServer, Caddy, database_url

pytestmark = pytest.mark.django_db(transaction=True)
TOTAL = 600 * 1024 * 1024
CHUNK = 64 * 1024


class DirectoryWatch:
    """The largest total size a directory's files reach while it runs."""

    def __init__(self, path: Path):
        self.path, self.largest, self._stop = path, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for root, _, files in os.walk(self.path):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.stat(os.path.join(root, name)).st_size
            self.largest = max(self.largest, total)
            time.sleep(0.02)

    def __enter__(self) -> DirectoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _attack(port: int, *, chunked: bool) -> tuple[str, int, float]:
    """POST 600 MB to /csp-report/; (status line, body bytes sent before it, seconds)."""
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {TOTAL}"
    sock.sendall(
        (
            f"POST /csp-report/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/csp-report\r\n{framing}\r\n\r\n"
        ).encode()
    )
    sent, piece = 0, b"x" * CHUNK
    framed = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    answer = b""
    sock.settimeout(5)
    try:
        # A moment for an answer to the headers alone (a declared length over the limit).
        wait = 0 if chunked else 0.5
        while sent < TOTAL:
            readable, _, _ = select.select([sock], [], [], wait)
            wait = 0
            if readable:
                break
            sock.sendall(framed)
            sent += CHUNK
    except OSError:
        pass  # the server answered and closed while we were still sending
    with contextlib.suppress(OSError):
        answer = sock.recv(4096)
    sock.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return status, sent, time.perf_counter() - started


def _measured(server: AsgiServer, tmp: Path, *, port: int, chunked: bool) -> dict:
    peak_rss_reset(server.pid)
    before = server.rss_kb() / 1024
    with DirectoryWatch(tmp) as watch:
        status, sent, seconds = _attack(port, chunked=chunked)
        time.sleep(0.1)
    return {
        "status": status,
        "sent_mb": sent / 1024 / 1024,
        "disk_kb": watch.largest / 1024,
        "grew_mb": peak_rss_mb(server.pid) - before,
        "seconds": seconds,
    }


def _line(how: str, m: dict) -> str:
    return (
        f"{how} -> {m['status'].removeprefix('HTTP/1.1 ')} after {m['sent_mb']:.1f} MB sent, "
        f"temp files {m['disk_kb']:.0f} KB, web process +{max(0.0, m['grew_mb']):.0f} MB, "
        f"{m['seconds']:.2f} s"
    )


def test_r12_a_600_mb_body_is_refused_before_it_reaches_disk(tmp_path, figures):
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    server = AsgiServer(
        database_url=database_url(connection.settings_dict),
        env={
            "SECRET_KEY": django_settings.SECRET_KEY,
            **UNLIMITED_RATES,
            "RATE_CSP_REPORTS_PER_CLIENT": "1000/m",
            "TMPDIR": str(server_tmp),
        },
    ).start()
    results: dict[str, dict] = {}
    try:
        results["chunked"] = _measured(server, server_tmp, port=server.port, chunked=True)
        results["declared"] = _measured(server, server_tmp, port=server.port, chunked=False)
        proxy = _caddy_in_front(server, tmp_path)
        if proxy is not None:
            with proxy:
                port = int(proxy.url.rsplit(":", 1)[1])
                results["chunked via Caddy"] = _measured(
                    server, server_tmp, port=port, chunked=True
                )
                results["declared via Caddy"] = _measured(
                    server, server_tmp, port=port, chunked=False
                )
    finally:
        server.stop()

    for how, m in results.items():
        assert " 413 " in f"{m['status']} ", f"{how}: {m['status']!r}"
        assert m["disk_kb"] < 1024, f"{how}: {m['disk_kb']:.0f} KB of temporary files"
        assert m["grew_mb"] < 50, f"{how}: the web process grew {m['grew_mb']:.0f} MB"
    assert results["declared"]["sent_mb"] == 0  # answered on its headers alone
    figures(
        "600 MB POSTs to /csp-report/: "
        + "; ".join(_line(how, m) for how, m in results.items())
        + ("" if len(results) > 2 else "; Caddy not installed: proxy not measured")
        + " (before: a 567 MB temp file)"
    )


def _caddy_in_front(server: AsgiServer, tmp_path: Path):
    executable = shutil.which("caddy")
    if executable is None:
        return None
    home = tmp_path / "caddy"
    home.mkdir()
    return Caddy(executable, [f"127.0.0.1:{server.port}"], home)
