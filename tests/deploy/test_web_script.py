"""deploy/web.sh, the image's web command, believes X-Forwarded-For/-Proto only when
FORWARDED_ALLOW_IPS names the proxy. (Django then also reads X-Forwarded-Proto whoever sends
it, SECURE_PROXY_SSL_HEADER: which is why only the proxy may reach a web process, as in
docker-compose.yml; tests/deploy/test_shape.py shows the proxy replaces a client's own.)"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.servers import AsgiServer, database_url

ROOT = Path(__file__).resolve().parents[2]
FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def scheme_seen(url: str) -> str:
    """The scheme Django built an absolute URL with (its CSP reporting endpoint)."""
    request = urllib.request.Request(f"{url}/login/", headers=FORGED)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our server
        return re.search(r'csp="(\w+)://', response.headers["Reporting-Endpoints"]).group(1)


@pytest.mark.parametrize(
    ("proxy", "seen"),
    [("", "http"), ("127.0.0.1", "https")],
    ids=["no-proxy-configured", "from-the-proxy"],
)
def test_forwarded_headers_are_believed_only_with_a_configured_proxy(transactional_db, proxy, seen):
    env = {"SECRET_KEY": settings.SECRET_KEY, "FORWARDED_ALLOW_IPS": proxy}
    with AsgiServer(
        database_url=database_url(connection.settings_dict), env=env, server="deploy/web.sh"
    ) as server:
        assert scheme_seen(server.url) == seen
        health = urllib.request.urlopen(f"{server.url}/health/", timeout=10)  # noqa: S310
        assert health.status == 200


def test_the_web_script_uses_a_websocket_implementation_uvicorn_does_not_deprecate():
    from uvicorn.config import WS_PROTOCOLS

    name = re.search(r"--ws (\S+)", (ROOT / "deploy" / "web.sh").read_text()).group(1)
    module = WS_PROTOCOLS[name].split(":")[0]
    # Imported fresh, every warning an error: uvicorn warns when the module is imported.
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_arguments_to_the_web_script_reach_uvicorn_and_a_later_ws_wins(transactional_db):
    # bench.live --ws websockets measures the deprecated implementation this way, beside
    # production's: the same script, one more option (a later --ws wins in uvicorn).
    env = {"SECRET_KEY": settings.SECRET_KEY}
    db_url = database_url(connection.settings_dict)
    with AsgiServer(database_url=db_url, env=env, server="deploy/web.sh") as server:
        assert "--ws websockets-sansio" in _command_line(server.pid)
        assert "UvicornDeprecationWarning" not in server.output(lines=400)
    with AsgiServer(
        database_url=db_url, env=env, server="deploy/web.sh", args=("--ws", "websockets")
    ) as server:
        assert _command_line(server.pid).endswith("--ws websockets")
        assert "The `websockets` implementation is deprecated" in server.output(lines=400)


def _command_line(pid: int) -> str:
    # deploy/web.sh execs uvicorn: the server's process is uvicorn's.
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode()


def test_the_web_script_declines_the_deflate_browsers_offer(transactional_db, customer):
    # Accepted, it gave each socket a compressor of its own: 68.5 KB a socket, not 36.2
    # (bench.live --deflate-column), over goal 5's 45 KB.
    client = Client()
    client.force_login(customer.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    env = {"SECRET_KEY": settings.SECRET_KEY}
    db_url = database_url(connection.settings_dict)

    async def negotiated(url: str) -> int:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                url.replace("http", "ws") + "/ws/thread/",
                headers={"Cookie": cookie, "Origin": url},
                compress=15,  # what a browser offers
            )
            await ws.close()
            return ws.compress

    with AsgiServer(database_url=db_url, env=env, server="deploy/web.sh") as server:
        assert asyncio.run(negotiated(server.url)) == 0
    # uvicorn's own default, as the bench's side column runs it: the offer is taken.
    with AsgiServer(
        database_url=db_url,
        env=env,
        server="deploy/web.sh",
        args=("--ws-per-message-deflate", "true"),
    ) as server:
        assert asyncio.run(negotiated(server.url)) > 0  # its window bits
