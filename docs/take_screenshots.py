"""Take the README's screenshots from the demo data with headless Chromium.

    .venv/bin/python docs/take_screenshots.py        (or: make screenshots)

Runs its own server (uvicorn) on a throwaway SQLite database, so it never touches yours.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path
    from tests.servers import AsgiServer

    workdir = Path(tempfile.mkdtemp(prefix="porchlight-shots-"))
    # The demo on a throwaway SQLite file, the in-memory layer: nothing of yours is touched.
    server = AsgiServer(
        database_url=f"sqlite:///{workdir / 'db.sqlite3'}", env={"DEBUG": "1", "REDIS_URL": ""}
    )
    env = server.env
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)  # noqa: S603
    subprocess.run([*manage, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603

    def link(who: str) -> str:
        return subprocess.check_output([*manage, "login_link", who], env=env, text=True).strip()  # noqa: S603

    server.start()  # raises, with the server's output, if it does not come up
    try:
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
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Screenshots written to {OUT}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
