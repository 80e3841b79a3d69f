"""`make run`'s .env: every manage.py command run in a plain shell afterwards sees the same
settings as the server, and links point at the address actually served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tests.servers import database_url

ROOT = Path(__file__).resolve().parent.parent


def _plain_shell(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """manage.py as a person would run it in a new shell: no DEBUG, SECRET_KEY or SITE_URL."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "SITE_URL", "ALLOWED_HOSTS"}
    }
    env.update(
        PORCHLIGHT_ENV_FILE=str(env_file), DATABASE_URL=database_url(connection.settings_dict)
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_login_link_in_a_plain_shell_points_at_the_running_server(tmp_path, customer):
    env_file = tmp_path / ".env"
    call_command("dev_env", host="127.0.0.1", port=9123, env_file=env_file)
    result = _plain_shell("login_link", "sarah@example.com", env_file=env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:9123/login/magic/?sesame=")


def test_the_env_file_keeps_its_secret_key_and_the_developers_own_lines(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TWILIO_ACCOUNT_SID=ACmine\n")
    call_command("dev_env", host="127.0.0.1", port=8000, env_file=env_file)
    first = env_file.read_text()
    call_command("dev_env", host="127.0.0.1", port=9000, env_file=env_file)
    second = env_file.read_text()
    key = [line for line in first.splitlines() if line.startswith("SECRET_KEY=")]
    assert key and key[0] in second and len(key[0]) > 40
    assert "TWILIO_ACCOUNT_SID=ACmine" in second
    assert "SITE_URL=http://127.0.0.1:9000" in second
    assert "DEBUG=1" in second
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_serving_every_interface_links_to_an_address_a_browser_opens(tmp_path):
    env_file = tmp_path / ".env"
    call_command("dev_env", host="0.0.0.0", port=9000, env_file=env_file)  # noqa: S104
    text = env_file.read_text()
    assert "SITE_URL=http://127.0.0.1:9000" in text
    hosts = next(line for line in text.splitlines() if line.startswith("ALLOWED_HOSTS="))
    assert "0.0.0.0" not in hosts and "127.0.0.1" in hosts and "localhost" in hosts


def test_a_named_host_is_allowed_and_linked(tmp_path):
    env_file = tmp_path / ".env"
    call_command("dev_env", host="192.168.1.20", port=8000, env_file=env_file)
    text = env_file.read_text()
    assert "SITE_URL=http://192.168.1.20:8000" in text
    hosts = next(line for line in text.splitlines() if line.startswith("ALLOWED_HOSTS="))
    assert "192.168.1.20" in hosts


def test_vapid_keys_can_go_straight_into_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    call_command("vapid_keys", write_env=True, env_file=env_file)
    text = env_file.read_text()
    assert "VAPID_PUBLIC_KEY=" in text and "VAPID_PRIVATE_KEY=" in text
