"""The proofs of `make deploy-test` (deploy/test/run.sh), against the running compose stack,
from outside it: HTTPS through the proxy (Caddy's internal CA, DEPLOY_TEST_CA), the web
containers at their own addresses where a proof needs one process and not the other, a real
Chromium for the customer's open page, and `docker compose exec` for what only the inside
shows (the outbox rows). Nothing here imports the project's code: it is a client.

    python deploy/test/stack.py health|live|automation|media|snapshot|faults [--out FILE]

Each command prints one line of figures (JSON) and exits 1, saying why, when a proof fails.
Environment: COMPOSE (the compose command, e.g. "docker-compose"), COMPOSE_PROJECT_NAME and
ENV_FILE (the stack), DEPLOY_TEST_CA (the proxy's root certificate).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
SITE = "https://localhost"
CA = os.environ.get("DEPLOY_TEST_CA", "")
COMPOSE = shlex.split(os.environ.get("COMPOSE", "docker-compose"))
CUSTOMER = "sarah@example.com"
STAFF = "mike"
# Every message a proof sends carries a mark of its own, bracketed so that [DT-…-1] is never
# found inside [DT-…-10].
MARK = re.compile(r"\[DT-[0-9a-f]{8}-\d+\]")
PHOTO = ROOT / "static" / "icons" / "icon-192.png"  # a real PNG the project ships


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# -- the stack from outside ----------------------------------------------------------------


def docker(*args: str, timeout: float = 30) -> str:
    return subprocess.run(  # noqa: S603 - our own arguments
        [shutil.which("docker") or "docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout


def compose(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(  # noqa: S603 - our own arguments
        [*COMPOSE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if result.returncode != 0:
        raise Failed(f"{' '.join(args[:3])}: {result.stderr.strip()[-500:]}")
    return result.stdout


def django(code: str) -> object:
    """The last line a Django shell snippet prints, as JSON (inside web_1: the outbox rows)."""
    out = compose("exec", "-T", "web", "python", "manage.py", "shell", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


def web_containers() -> list[tuple[str, str]]:
    """(name, address) of every web container, by name: web_1, web_2."""
    ids = compose("ps", "-q", "web").split()
    address = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    out = docker("inspect", "-f", "{{.Name}} " + address, *ids)
    pairs = sorted(tuple(line.strip("/").split()) for line in out.splitlines() if line.strip())
    check(len(pairs) >= 2, f"expected two web containers, found {pairs}")
    return pairs


def direct(address: str) -> str:
    return f"http://{address}:8000"


def health() -> tuple[int, dict]:
    try:
        answer = requests.get(
            f"{SITE}/health/", headers={"Accept": "application/json"}, verify=CA, timeout=10
        )
    except requests.RequestException as error:
        return 0, {"error": type(error).__name__}
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {"body": answer.text[:200]}


def wait_healthy(deadline: float) -> float:
    started = time.monotonic()
    while time.monotonic() < started + deadline:
        status, checks = health()
        if status == 200 and checks and all(v == "OK" for v in checks.values()):
            return time.monotonic() - started
        time.sleep(0.5)
    raise Failed(f"/health/ not 200 within {deadline:.0f} s: {status} {checks}")


class Person:
    """Someone signed in through the proxy with a one-time link, as a person would: the link
    from `manage.py login_link`, the page's "Sign in" button (GET alone never signs in)."""

    def __init__(self, who: str) -> None:
        link = compose("exec", "-T", "web", "python", "manage.py", "login_link", who).split()[-1]
        check(link.startswith(SITE + "/"), f"login_link printed {link!r}, not a link to {SITE}")
        self.http = requests.Session()
        # Not the environment's CA bundle (which requests would prefer): the proxy's own CA.
        self.http.trust_env = False
        self.http.verify = CA
        page = self.http.get(link, timeout=10)
        check(page.status_code == 200 and "Sign in" in page.text, f"link page: {page.status_code}")
        check("sessionid" not in self.http.cookies, "GET of the link signed in")
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', page.text).group(1)
            for name in ("csrfmiddlewaretoken", "sesame")
        }
        answer = self.http.post(
            f"{SITE}/login/magic/", data=form, headers={"Referer": link}, timeout=10
        )
        check(answer.status_code == 200, f"signing in answered {answer.status_code}")
        self.landed = answer.url
        self.http.headers.update(
            {"X-CSRFToken": self.http.cookies["csrftoken"], "Referer": SITE + "/"}
        )

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def post(self, path: str, *, base: str = SITE, **kwargs) -> requests.Response:
        """POST through the proxy, or straight to one web container (`base`) as the proxy
        would: the site's Host, https in X-Forwarded-Proto, the session's cookies."""
        if base == SITE:
            return self.http.post(SITE + path, timeout=15, **kwargs)
        headers = {
            **self.http.headers,
            **kwargs.pop("headers", {}),
            "Host": "localhost",
            "X-Forwarded-Proto": "https",
            "Cookie": self.cookie(),
        }
        return requests.post(
            base + path, headers=headers, timeout=15, allow_redirects=False, **kwargs
        )


class Socket:
    """The customer's live thread (/ws/thread/) on one connection, keeping every frame."""

    def __init__(self, url: str, person: Person) -> None:
        context = ssl.create_default_context(cafile=CA) if url.startswith("wss:") else None
        self.ws = connect(
            url,
            ssl=context,
            additional_headers={"Cookie": person.cookie(), "Origin": SITE},
            open_timeout=10,
        )
        self.text = ""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for frame in self.ws:
                self.text += frame if isinstance(frame, str) else frame.decode()
        except Exception:  # noqa: BLE001, S110 - closed: the text so far is what arrived
            pass

    def wait_for(self, mark: str, timeout: float = 15) -> float:
        started = time.monotonic()
        while mark not in self.text:
            if time.monotonic() - started > timeout:
                raise Failed(f"{mark} did not reach the socket within {timeout:.0f} s")
            time.sleep(0.05)
        return time.monotonic() - started

    def close(self) -> None:
        self.ws.close()


def thread_id() -> int:
    return django(
        "import json; from messaging.models import Thread; "
        f"print(json.dumps(Thread.objects.get(customer__email={CUSTOMER!r}).pk))"
    )


def send(staff: Person, thread: int, body: str, *, base: str = SITE, **extra) -> requests.Response:
    data = {"body": body, "key": uuid.uuid4().hex, "urgent": "on"}
    # Urgent: a staff message goes now whatever the customer's quiet hours (the clock of
    # the run must not decide whether it is delivered within it).
    return staff.post(
        f"/staff/chat/{thread}/send/", base=base, data=data, headers={"HX-Request": "true"}, **extra
    )


def outbox(marks: list[str]) -> dict:
    """Per mark: how many entries carry it, and its deliveries' channel and status."""
    code = (
        "import json\n"
        "from messaging.models import Entry\n"
        "from notifications.models import Delivery\n"
        f"marks = {marks!r}\n"
        "out = {}\n"
        "for m in marks:\n"
        "    entries = list(Entry.objects.filter(body__contains=m).values_list('pk', flat=True))\n"
        "    rows = Delivery.objects.filter(entry_id__in=entries)\n"
        "    rows = rows.values_list('channel', 'status')\n"
        "    out[m] = {'entries': len(entries), 'deliveries': sorted(map(list, rows))}\n"
        "print(json.dumps(out))"
    )
    return django(code)


def sms_sent(marks: list[str]) -> dict[str, int]:
    """How many SMS the console provider sent for each mark, from the worker's log (every
    worker container, restarts included): the provider's side of "exactly once"."""
    log = compose("logs", "--no-color", "worker", timeout=60).splitlines()
    counts = dict.fromkeys(marks, 0)
    for i, line in enumerate(log):
        if "SMS (console) to" in line and i + 1 < len(log):
            for mark in MARK.findall(log[i + 1]):
                if mark in counts:
                    counts[mark] += 1
    return counts


SENT = {"sent", "delivered"}


def settled(row: dict) -> bool:
    """One entry, its SMS sent and its email sent or folded into another (several messages
    within the email delay go as one email; the others are "suppressed")."""
    channels = {c for c, _ in row["deliveries"]}
    return (
        row["entries"] == 1
        and "sms" in channels
        and all(s in SENT for c, s in row["deliveries"] if c == "sms")
        and all(s in SENT | {"suppressed"} for c, s in row["deliveries"] if c != "sms")
    )


def wait_delivered(marks: list[str], deadline: float) -> tuple[float, dict]:
    started = time.monotonic()
    while True:
        rows = outbox(marks)
        done = all(settled(r) for r in rows.values())
        if done or time.monotonic() - started > deadline:
            return time.monotonic() - started, rows
        time.sleep(2)


# -- the proofs ------------------------------------------------------------------------------


def cmd_health(args) -> dict:
    status, checks = health()
    check(status == 200, f"/health/ answered {status}: {checks}")
    expected = {"Database(alias='default')", "Cache(alias='default')", "ChannelLayer()", "Broker()"}
    check(set(checks) == expected, f"/health/ checks {sorted(checks)}, expected {sorted(expected)}")
    check(all(v == "OK" for v in checks.values()), f"/health/: {checks}")
    return {"status": status, "checks": checks}


def cmd_live(args) -> dict:
    """A staff link signs in; a message sent through one web container reaches the customer's
    socket on the other; the worker delivers it."""
    staff = Person(STAFF)
    check(staff.landed == f"{SITE}/staff/projects/", f"mike's link landed on {staff.landed}")
    projects = staff.http.get(f"{SITE}/staff/projects/", timeout=10)
    check("Open chat with Sarah" in projects.text, "the staff list does not show Sarah's chat")
    customer = Person(CUSTOMER)
    check(customer.landed == f"{SITE}/messages/", f"Sarah's link landed on {customer.landed}")
    thread = thread_id()
    (web_a, address_a), (web_b, address_b) = web_containers()[:2]
    on_a = Socket(f"ws://{address_a}:8000/ws/thread/", customer)
    via_proxy = Socket("wss://localhost/ws/thread/", customer)
    run = uuid.uuid4().hex[:8]
    crossing, proxied = f"[DT-{run}-1]", f"[DT-{run}-2]"
    body = f"Sent through {web_b}, read on {web_a}: {crossing}"
    answer = send(staff, thread, body, base=direct(address_b))
    check(answer.status_code == 200, f"send through {web_b}: {answer.status_code}")
    crossed = on_a.wait_for(crossing)
    answer = send(staff, thread, f"Sent through the proxy: {proxied}")
    check(answer.status_code == 200, f"send through the proxy: {answer.status_code}")
    via_proxy.wait_for(crossing)
    via_proxy.wait_for(proxied)
    on_a.wait_for(proxied)
    on_a.close()
    via_proxy.close()
    took, rows = wait_delivered([crossing, proxied], deadline=60)
    channels = sorted({c for r in rows.values() for c, _ in r["deliveries"]})
    for mark, row in rows.items():
        check(settled(row), f"{mark}: {row}")
    sms = sms_sent([crossing, proxied])
    check(all(n == 1 for n in sms.values()), f"SMS sent per message: {sms}")
    return {
        "staff_signed_in": staff.landed,
        "crossed": f"{web_b} -> {web_a}",
        "crossing_seconds": round(crossed, 2),
        "delivered_seconds": round(took, 1),
        "channels": channels,
        "sms_per_message": sms,
    }


def cmd_automation(args) -> dict:
    """Beat runs the CRM automations: Daniel's project, completed as staff do it in the admin
    with follow-ups due at once, gets its follow-up message from beat and the worker."""
    code = (
        "import json; from crm_events import actions; from portal.models import Project\n"
        "project = Project.objects.get(customer__email='daniel@example.com')\n"
        "settings = actions.crm_settings(project.customer.business)\n"
        "settings.follow_ups_enabled = True; settings.follow_up_days = 0\n"
        "settings.save(update_fields=['follow_ups_enabled', 'follow_up_days'])\n"
        "project.status = Project.Status.COMPLETED; project.save(update_fields=['status'])\n"
        "print(json.dumps(project.pk))"
    )
    project = django(code)
    key = f"crm:project:{project}:follow-up"
    query = (
        "import json; from messaging.models import Entry\n"
        f"e = Entry.objects.filter(idempotency_key={key!r}).values('kind', 'body').first()\n"
        "print(json.dumps(e))"
    )
    started = time.monotonic()
    while (entry := django(query)) is None:
        check(time.monotonic() - started < 90, "no follow-up within 90 s: is beat running?")
        time.sleep(2)
    check(entry["kind"] == "automated", f"the follow-up is a {entry['kind']}")
    took = round(time.monotonic() - started, 1)
    return {"automation": "follow-up", "seconds": took, "body": entry["body"][:60]}


def cmd_media(args) -> dict:
    """A photo attached to a staff message, through the proxy: stored on the media volume."""
    staff = Person(STAFF)
    thread = thread_id()
    with PHOTO.open("rb") as photo:
        body = f"Photo [DT-{uuid.uuid4().hex[:8]}-0]"
        answer = send(staff, thread, body, files={"photos": ("deck.png", photo, "image/png")})
    check(answer.status_code == 200, f"sending a photo: {answer.status_code}")
    return cmd_snapshot(args)


def cmd_snapshot(args) -> dict:
    """What must survive down/up and a backup: counts, Sarah's last sequence number, and every
    stored file's SHA-256 read back through the storage (the media volume)."""
    code = (
        "import hashlib, json\n"
        "from django.core.files.storage import default_storage\n"
        "from messaging.models import Attachment, Entry, Thread\n"
        "from notifications.models import Delivery\n"
        f"t = Thread.objects.get(customer__email={CUSTOMER!r})\n"
        "files = {}\n"
        "for a in Attachment.objects.order_by('pk'):\n"
        "    with default_storage.open(a.file.name) as f:\n"
        "        files[a.file.name] = hashlib.sha256(f.read()).hexdigest()\n"
        "print(json.dumps({'entries': Entry.objects.count(),\n"
        "    'deliveries': Delivery.objects.count(),\n"
        "    'sarah_entries': Entry.objects.filter(thread=t).count(),\n"
        "    'sarah_last_seq': t.last_seq, 'files': files}))"
    )
    return django(code)


# -- faults under traffic -------------------------------------------------------------------


class Traffic:
    """A bounded loop of staff sends, alternating between the two web containers, each with a
    mark of its own; every answer recorded."""

    def __init__(self, staff: Person, thread: int, run: str, *, interval: float = 0.5) -> None:
        self.staff, self.thread, self.run, self.interval = staff, thread, run, interval
        self.webs = web_containers()[:2]
        self.sent: list[dict] = []
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Traffic:
        self.worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.worker.join(timeout=30)

    def _loop(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 400:  # bounded whatever happens
            n += 1
            name, address = self.webs[n % 2]
            mark = f"[DT-{self.run}-{n}]"
            record = {"mark": mark, "web": name, "at": time.monotonic()}
            try:
                answer = send(self.staff, self.thread, f"Traffic {mark}", base=direct(address))
                record["status"] = answer.status_code
                if answer.status_code != 200:
                    text = re.sub(r"<[^>]+>", " ", answer.text)
                    record["answer"] = re.sub(r"\s+", " ", text).strip()[:160]
            except requests.RequestException as error:
                record["status"] = 0
                record["answer"] = type(error).__name__
            self.sent.append(record)
            self.stop.wait(self.interval)

    def accepted(self) -> list[str]:
        return [r["mark"] for r in self.sent if r["status"] == 200]

    def refused(self) -> list[dict]:
        return [r for r in self.sent if r["status"] != 200]


class Page:
    """A thread's page in Chromium, through the proxy, never reloaded: mike's chat with Sarah.
    (Staff, not Sarah: her open page would mark each message read as it arrives, and a message
    read in the portal is, rightly, not also texted to her; the rehearsal counts texts.)"""

    def __init__(self, playwright, person: Person, path: str) -> None:
        from tests.browser import CHROMIUM_ARGS

        self.browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        self.context = self.browser.new_context(ignore_https_errors=True)
        self.context.add_cookies(
            [{"name": c.name, "value": c.value, "url": SITE} for c in person.http.cookies]
        )
        self.page = self.context.new_page()
        self.page.goto(SITE + path)
        check(self.page.url == SITE + path, f"the page opened {self.page.url}, not {path}")
        self.loads = 0
        self.page.on("load", lambda _: setattr(self, "loads", self.loads + 1))

    def marks(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for text in self.page.locator(".entry[data-seq]").all_inner_texts():
            for mark in MARK.findall(text):
                counts[mark] = counts.get(mark, 0) + 1
        return counts

    def close(self) -> None:
        self.context.close()
        self.browser.close()


def rehearse(name: str, fault, *, staff: Person, thread: int, page: Page) -> dict:
    run = uuid.uuid4().hex[:8]
    healths: list[tuple[float, int, dict]] = []
    with Traffic(staff, thread, run) as traffic:
        time.sleep(5)
        fault_started = time.monotonic()
        fault_figures = fault(healths)
        fault_ended = time.monotonic()
        time.sleep(5)
    healthy_after = wait_healthy(120)
    # A refused send either wrote nothing, or (its answer lost after the commit: the database
    # went away while the answer was rendered) wrote the whole message, entry and deliveries,
    # as the page's retry with the same key would then find. Never an entry without them.
    refused = traffic.refused()
    after_refusal = outbox([r["mark"] for r in refused]) if refused else {}
    committed = [m for m, r in after_refusal.items() if r["entries"]]
    half_rows = sum(1 for m in committed if not after_refusal[m]["deliveries"])
    accepted = traffic.accepted() + committed
    took, rows = wait_delivered(accepted, deadline=180)
    recovered_at = time.monotonic()
    sms = sms_sent(accepted)
    # The open page: every accepted message once, without a reload.
    page_started = time.monotonic()
    while True:
        shown = page.marks()
        page_complete = all(shown.get(m, 0) == 1 for m in accepted)
        if page_complete or time.monotonic() - page_started > 60:
            break
        time.sleep(1)
    entries = {m: r["entries"] for m, r in rows.items()}
    undelivered = [m for m, r in rows.items() if not settled(r)]
    down = {f"{s} {sorted(k for k, v in c.items() if v != 'OK')}" for _, s, c in healths}
    figures = {
        "fault": name,
        **fault_figures,
        "sends": len(traffic.sent),
        "accepted": len(traffic.accepted()),
        "refused": len(refused),
        "refused_but_committed": len(committed),
        "refused_answers": sorted({f"{r['status']} {r.get('answer', '')}"[:100] for r in refused}),
        "entries_without_deliveries": half_rows,
        "entries_missing": sum(1 for n in entries.values() if n == 0),
        "entries_duplicated": sum(1 for n in entries.values() if n > 1),
        "undelivered": len(undelivered),
        "sms_sent": sum(sms.values()),
        "sms_twice": sum(1 for n in sms.values() if n > 1),
        "sms_missing": sum(1 for n in sms.values() if n == 0),
        "health_200_after_fault_s": round(healthy_after, 1),
        "all_delivered_after_fault_s": round(recovered_at - fault_ended, 1),
        "fault_lasted_s": round(fault_ended - fault_started, 1),
        "page_shows_all_once": page_complete,
        "page_missing": sum(1 for m in accepted if shown.get(m, 0) == 0),
        "page_reloads": page.loads,
        "health_while_down": sorted(down),
    }
    problems = []
    if figures["entries_missing"] or figures["entries_duplicated"] or figures["undelivered"]:
        problems.append("entries missing, doubled or undelivered")
    if figures["sms_twice"] or figures["sms_missing"]:
        problems.append("an SMS missing or sent twice")
    if half_rows:
        problems.append("a refused send left rows")
    if any(r["status"] >= 500 and r["status"] != 503 for r in refused):
        problems.append("a send answered a bare 5xx, not 503 with the reason")
    if not page_complete or page.loads:
        problems.append("the open page did not resume by itself")
    figures["ok"] = not problems
    figures["problems"] = problems
    return figures


def poll_health(healths: list, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status, checks = health()
        healths.append((time.monotonic(), status, checks))
        time.sleep(1)


def redis_down(healths: list) -> dict:
    compose("stop", "redis")
    poll_health(healths, 30)
    compose("start", "redis")
    return {"redis_stopped_s": 30}


def database_restart(healths: list) -> dict:
    compose("stop", "db")
    started = time.monotonic()
    named = False
    while time.monotonic() - started < 10:
        status, checks = health()
        healths.append((time.monotonic(), status, checks))
        named = named or (status == 503 and checks.get("Database(alias='default')", "OK") != "OK")
        time.sleep(1)
    compose("start", "db")
    return {"db_stopped_s": 10, "health_503_named_database": named}


def worker_killed(healths: list) -> dict:
    (container,) = compose("ps", "-q", "worker").split()
    pid, restarts = docker("inspect", "-f", "{{.State.Pid}} {{.RestartCount}}", container).split()
    # The worker's main process, killed from the host as the kernel's OOM killer would:
    # no shutdown, tasks in flight abandoned; the restart policy starts it again.
    os.kill(int(pid), 9)
    # Rows the killed worker had claimed and not finished: the sweeper's to re-drive.
    claimed = django(
        "import json; from notifications.models import Delivery; "
        "print(json.dumps(Delivery.objects.filter(status='sending').count()))"
    )
    started = time.monotonic()
    while time.monotonic() - started < 60:
        state = docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", container).split()
        if state and state[0] == "running" and int(state[1]) > int(restarts):
            break
        time.sleep(1)
    else:
        raise Failed("the killed worker was not restarted within 60 s")
    return {
        "sending_when_killed": claimed,
        "worker_back_s": round(time.monotonic() - started, 1),
    }


def cmd_faults(args) -> dict:
    from playwright.sync_api import sync_playwright

    staff = Person(STAFF)
    thread = thread_id()
    results = []
    with sync_playwright() as playwright:
        page = Page(playwright, staff, f"/staff/chat/{thread}/")
        for name, fault in (
            ("redis stopped 30 s", redis_down),
            ("database restarted", database_restart),
            ("worker killed", worker_killed),
        ):
            figures = rehearse(name, fault, staff=staff, thread=thread, page=page)
            print(json.dumps(figures), flush=True)
            results.append(figures)
        page.close()
    failed = [f"{r['fault']}: {', '.join(r['problems'])}" for r in results if not r["ok"]]
    check(not failed, "; ".join(failed))
    return {"faults": len(results), "ok": True}


COMMANDS = {
    "health": cmd_health,
    "live": cmd_live,
    "automation": cmd_automation,
    "media": cmd_media,
    "snapshot": cmd_snapshot,
    "faults": cmd_faults,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--out", help="also write the figures (JSON) to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    try:
        figures = COMMANDS[args.command](args)
    except Failed as error:
        print(f"FAILED {args.command}: {error}", file=sys.stderr)
        return 1
    line = json.dumps(figures)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
