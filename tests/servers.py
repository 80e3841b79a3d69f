"""Real processes of the project, for browser tests, benches and screenshots alike: the ASGI
server and a Celery worker, each started on a chosen database, waited for, and stopped.

Each runs in its own process group, so stopping it takes its children too, and each keeps
its output (a file for the server, lines for the worker) to show when it fails to start.
"""

from __future__ import annotations

import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent

# Browser tests and benches sign in and send from 127.0.0.1 again and again, and the server
# keeps its rate-limit counters in Redis across them: the limits themselves are tested in
# tests/test_login.py and tests/test_messages_page.py. (The limiter still counts, as in
# production.)
UNLIMITED_RATES = dict.fromkeys(
    (
        "RATE_LOGIN_LINKS_PER_CLIENT",
        "RATE_LOGIN_LINKS_PER_ADDRESS",
        "RATE_STAFF_LOGIN_FAILURES",
        "RATE_STAFF_LOGIN_FAILURES_PER_CLIENT",
        "RATE_SENDS_PER_USER",
        "RATE_CSP_REPORTS_PER_CLIENT",
        "RATE_SIGN_IN_CODES_PER_ADDRESS",
        "RATE_SIGN_IN_CODES_PER_CLIENT",
        "RATE_SIGN_IN_CODES_GLOBAL",
        "RATE_CODE_GUESSES_PER_ADDRESS",
        "RATE_CODE_GUESSES_PER_CLIENT",
        "RATE_CODE_GUESSES_GLOBAL",
    ),
    "1000000/h",
)


class ProcessFailed(RuntimeError):
    """A server or worker that did not start; the message ends with its last output."""


# Under pytest-xdist each worker takes ports from a block of its own, below the kernel's
# ephemeral range (32768 and up): a port is free when checked and bound by the server a moment
# later, and in between the kernel could hand the same free port to another worker.
XDIST_PORTS_FROM, XDIST_PORTS_PER_WORKER = 20000, 500


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    first = XDIST_PORTS_FROM + XDIST_PORTS_PER_WORKER * int(worker.removeprefix("gw"))
    start = random.randrange(XDIST_PORTS_PER_WORKER)  # another run's same worker: elsewhere
    for offset in range(XDIST_PORTS_PER_WORKER):
        port = first + (start + offset) % XDIST_PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ProcessFailed(f"no free port in {first}-{first + XDIST_PORTS_PER_WORKER - 1}")


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL naming the database of a Django connection's settings (the test
    database, when called from a test)."""
    if "postgresql" not in settings_dict["ENGINE"]:
        return f"sqlite:///{settings_dict['NAME']}"
    auth = quote(settings_dict["USER"] or "")
    if settings_dict.get("PASSWORD"):
        auth += ":" + quote(settings_dict["PASSWORD"])
    host = f"{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{settings_dict['NAME']}"


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU used so far by every live process of a process group (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, ...; utime and stime are fields 14 and 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _stop_group(process: subprocess.Popen | None, *, graceful: bool) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


# The ASGI servers we can run the app with (`AsgiServer(server=...)`).
SERVER_COMMANDS = {
    "daphne": lambda app, port: ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
    "uvicorn": lambda app, port: [
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ],  # fmt: skip
    # deploy/web.sh, the production command line, run as the script itself (PORT, HOST and
    # PYTHON from the environment, as the image sets them); it serves portal.asgi whatever
    # `app` says.
    "deploy/web.sh": lambda app, port: [str(ROOT / "deploy" / "web.sh")],
    "granian": lambda app, port: [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        app,
    ],  # fmt: skip
}


class AsgiServer:
    """The project's ASGI application served by a real server process on 127.0.0.1.

    `env` is added to this process's environment (DATABASE_URL, SECRET_KEY, REDIS_URL...);
    SITE_URL defaults to the server's own address, DEBUG to off, as in production."""

    def __init__(
        self,
        *,
        database_url: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        server: str = "uvicorn",
        app: str = "portal.asgi:application",
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = server
        self.app = app
        # Appended to the server's command line (deploy/web.sh passes them on to uvicorn, where
        # a later option wins: `("--ws", "websockets")` runs the other WebSocket implementation).
        self.args = tuple(args)
        self.env = {
            **os.environ,
            "SITE_URL": self.url,
            "DEBUG": "",
            "PORCHLIGHT_ENV_FILE": "",
            **(env or {}),
            "DATABASE_URL": database_url,
        }
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / f"porchlight-server-{self.port}.log"

    def start(self, timeout: float = 30) -> AsgiServer:
        command = [*SERVER_COMMANDS[self.server](self.app, self.port), *self.args]
        if self.server == "deploy/web.sh":
            self.env.update(HOST="127.0.0.1", PORT=str(self.port), PYTHON=sys.executable)
        else:
            command = [sys.executable, *command]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)  # never leave a server behind, even if a test is killed
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{self.url}/login/", timeout=1).close()  # noqa: S310
                return self
            except urllib.error.HTTPError:
                return self  # it answered: up, whatever the status
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ProcessFailed(f"{self.server} did not start on {self.url}:\n{self.output()}")

    def output(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no output)"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        _stop_group(self.process, graceful=True)
        self.process = None

    def __enter__(self) -> AsgiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# docker-compose.yml's worker: one process whose tasks run on threads (they wait on providers;
# bench.deliveries chose it, docs/performance.md "perf2").
WORKER_POOL = "threads"
WORKER_CONCURRENCY = 64
# Its threads share a pool, and give their connection back while a provider answers
# (notifications.outbound.sending): a task holds one only for its own queries.
WORKER_DATABASE = {"DB_POOL": "1", "DB_POOL_MIN": "8", "DB_POOL_MAX": "16"}


class CeleryWorker:
    """`celery -A portal worker` (optionally with beat) in its own process group."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        concurrency: int = 1,
        pool: str = WORKER_POOL,
        beat: bool = False,
        name: str = "test",
        args: tuple[str, ...] = (),
    ) -> None:
        # As docker-compose.yml runs workers: a pool of connections the threads share.
        worker_database = WORKER_DATABASE
        self.env = {**os.environ, "PORCHLIGHT_ENV_FILE": "", **worker_database, **env}
        self.concurrency = concurrency
        self.pool = pool
        self.beat = beat
        self.args = args  # more of the worker's command line (benches try its options)
        self.name = f"{name}-{uuid.uuid4().hex[:8]}"
        self.output: list[str] = []
        self.ready_at: float | None = None
        self.process: subprocess.Popen | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 60) -> CeleryWorker:
        command = [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel=INFO",
            f"--pool={self.pool}", f"--concurrency={self.concurrency}", "--without-heartbeat",
            "--without-gossip", "--without-mingle", f"--hostname={self.name}@%h",
            *self.args,
        ]  # fmt: skip
        if self.beat:
            schedule = Path(tempfile.gettempdir()) / f"celerybeat-{self.name}"
            command += ["--beat", "--schedule", str(schedule)]
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: kill() takes the pool children too
        )
        atexit.register(self.kill)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise ProcessFailed("the Celery worker did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line and not self._ready.is_set():
                self.ready_at = time.perf_counter()
                self._ready.set()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return group_cpu_seconds(self.process.pid)

    def kill(self) -> None:
        """SIGKILL the worker and its pool: a crash, not a shutdown."""
        _stop_group(self.process, graceful=False)

    def stop(self) -> None:
        _stop_group(self.process, graceful=True)


class Caddy:
    """Debian's caddy running deploy/Caddyfile (production's proxy: its body limits,
    compression, round robin and WebSocket upgrades) over a list of upstreams, plain HTTP, in
    its own process group (its CPU read like a server's). `executable` is
    shutil.which("caddy"): each caller says in its own way that it is missing (a test skips
    or fails, a bench refuses)."""

    def __init__(
        self, executable: str, upstreams: list[str], home: Path, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "SITE_ADDRESS": self.url,
            "UPSTREAMS": "list",
            "WEB_UPSTREAMS": " ".join(upstreams),
            "CADDY_ADMIN": "off",
        }
        self.command = [executable, "run", "--config", str(ROOT / "deploy" / "Caddyfile")]
        self.log = home / "caddy.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Caddy:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ProcessFailed("caddy did not start:\n" + self.log.read_text()[-3000:])

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> Caddy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
