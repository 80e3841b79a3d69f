"""Take the README's screenshots from the demo data with headless Chromium.

    .venv/bin/python docs/take_screenshots.py        (or: make screenshots)

Runs its own server (daphne) on a throwaway SQLite database, so it never touches yours.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="porchlight-shots-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "DEBUG": "1",
        "SITE_URL": base,
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)  # noqa: S603
    subprocess.run([*manage, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603

    def link(who: str) -> str:
        return subprocess.check_output([*manage, "login_link", who], env=env, text=True).strip()  # noqa: S603

    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "portal.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/login/", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)

            staff = browser.new_context(viewport={"width": 1280, "height": 800})
            page = staff.new_page()
            page.goto(link("mike"))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/staff/projects/")
            page.screenshot(path=OUT / "staff-list.png")
            page.get_by_role("link", name=re.compile("Open chat with Sarah")).click()
            page.wait_for_selector("dialog[open] .staff-chat")
            page.wait_for_timeout(400)
            page.screenshot(path=OUT / "staff-modal.png")

            for name, width, height in (
                ("customer-mobile", 390, 844),
                ("customer-desktop", 1280, 800),
            ):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.goto(link("sarah@example.com"))
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/messages/")
                page.wait_for_timeout(400)
                page.screenshot(path=OUT / f"{name}.png")
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Screenshots written to {OUT}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
