"""The settings module reads the environment strictly: a typo stops the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _settings_value(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
        f"django.setup(); from django.conf import settings; print(repr(settings.{name}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SITE_URL")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "PORCHLIGHT_ENV_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_typo_in_a_boolean_fails_loudly():
    result = _settings_value("DEBUG", {"DEBUG": "ture"})
    assert result.returncode != 0
    assert "DEBUG='ture' is not a boolean" in result.stderr


def test_booleans_read_the_usual_spellings():
    assert _settings_value("DEBUG", {"DEBUG": "yes"}).stdout.strip() == "True"
    assert _settings_value("DEBUG", {"DEBUG": "0"}).stdout.strip() == "False"


def test_an_env_file_is_read_without_overriding_the_environment(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SITE_URL=http://127.0.0.1:9123\nLOG_LEVEL=WARNING\n")
    env = {"PORCHLIGHT_ENV_FILE": str(env_file), "LOG_LEVEL": "INFO"}
    assert _settings_value("SITE_URL", env).stdout.strip() == "'http://127.0.0.1:9123'"
    assert _settings_value("LOGGING['root']['level']", env).stdout.strip() == "'INFO'"
