"""How every headless Chromium here is launched: Debian's binary, and the flags this
machine needs (no sandbox as root, no GPU, no calls home that the closed network refuses)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def chromium_or_skip() -> str:
    """Chromium's path. Without it a test skips on a laptop and fails under CI, where the
    browser tests must run."""
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI requires Debian's chromium for the browser tests")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return executable
