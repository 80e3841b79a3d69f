"""How every headless Chromium here is launched: Debian's binary, and the flags this
machine needs (no sandbox as root, no GPU, no calls home that the closed network refuses)."""

from __future__ import annotations

import shutil

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
