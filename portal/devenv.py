"""The development `.env` beside manage.py: written by `make run` (and `vapid_keys
--write-env`), read by settings, so every `.venv/bin/python manage.py …` run in a plain shell
sees the same SECRET_KEY, DEBUG and SITE_URL as the running server. Git ignores it."""

from __future__ import annotations

import base64
import secrets
import socket
from pathlib import Path

from django.conf import settings

ENV_FILE = Path(settings.BASE_DIR) / ".env"
WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 - names of "every interface"


def read(path: Path = ENV_FILE) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def update(values: dict[str, str], path: Path = ENV_FILE) -> None:
    """Set `values` in the file, keeping every other line (a developer's own settings)."""
    lines = path.read_text().splitlines() if path.is_file() else []
    pending = dict(values)
    out = []
    for line in lines:
        name = line.partition("=")[0].strip()
        if name in pending:
            out.append(f"{name}={pending.pop(name)}")
        else:
            out.append(line)
    out += [f"{name}={value}" for name, value in pending.items()]
    path.write_text("\n".join(out) + "\n")
    path.chmod(0o600)  # it holds a secret key


def new_whsec() -> str:
    """A Standard Webhooks secret: "whsec_" and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def lan_addresses() -> list[str]:
    """This machine's addresses other devices on the network may reach (best effort: the
    interface a route to the outside would use; nothing is sent)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    return [a for a in found if not a.startswith("127.")]


def served_urls(host: str, port: int) -> tuple[str, list[str], list[str]]:
    """(the URL links should use, the hosts to allow, other URLs that reach the server).
    Bound to every interface ("0.0.0.0"), links use 127.0.0.1, which a browser on this
    machine can open, and the machine's LAN address is allowed and shown too."""
    allowed = ["127.0.0.1", "localhost", "[::1]"]
    if host in WILDCARD_HOSTS:
        others = lan_addresses()
        hostname = socket.gethostname()
        allowed += [*others, hostname]
        return f"http://127.0.0.1:{port}", allowed, [f"http://{a}:{port}" for a in others]
    if host not in allowed:
        allowed.append(host)
    return f"http://{host}:{port}", allowed, []
