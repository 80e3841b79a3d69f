"""Browser tests on a machine without Chromium: skipped on a laptop, a failure under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_TESTS = ["tests/notifications/test_pwa_browser.py"]


def _run_without_chromium(tmp_path, **env) -> subprocess.CompletedProcess:
    # PATH is an empty folder: shutil.which("chromium") finds nothing; no Redis.
    clean = {k: v for k, v in os.environ.items() if k not in {"CI", "DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(  # noqa: S603 - our own test runner
        # --no-migrations: the test database is made from the models at once; both runs stop
        # at Chromium's check, and the 38 migrations on SQLite were most of each run's time.
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-migrations",
            *BROWSER_TESTS,
        ],
        cwd=ROOT,
        env={
            **clean,
            "PATH": str(tmp_path),
            "PORCHLIGHT_ENV_FILE": "",
            # its own SQLite file: this run may hold the default one's test database
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_chromium_browser_tests_skip_on_a_laptop(tmp_path):
    result = _run_without_chromium(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "skipped" in result.stdout and "error" not in result.stdout.lower()


def test_without_chromium_browser_tests_fail_under_ci(tmp_path):
    result = _run_without_chromium(tmp_path, CI="true")
    assert result.returncode != 0
    assert "CI requires Debian's chromium" in result.stdout
