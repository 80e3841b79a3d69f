"""Every bench, one after another, and their tables written into docs/performance.md.

    SECRET_KEY=x .venv/bin/python -m bench.all                 # the code here: "after"
    SECRET_KEY=x .venv/bin/python -m bench.all --before main   # another commit: "before"
    SECRET_KEY=x .venv/bin/python -m bench.all --only pages,search --quick

Each bench runs in its own process (as `python -m bench.NAME ARGS`) with the load average
read before and after it, so a noisy figure can be told from a slow one: the machine is
shared, and the bare view each bench measures in the same run is the floor to read against.

`--before REV` measures another commit's code with this harness: REV is checked out in a
temporary worktree, this checkout's bench/ and tests/servers.py are copied over it (so the
server is started the same way, by deploy/web.sh with production's logging), and its benches
use their own database (the bench database's name + "_before", since the schemas differ).

Each table goes between markers of its own in docs/performance.md ("before" and "after" of
each bench); a run replaces only the blocks of what it ran. Add a bench: one line in BENCHES.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import harness

DOC = harness.ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Bench:
    module: str
    args: tuple[str, ...] = ()
    # Smaller sizes for a quick look (--quick); the figures in the docs use `args`.
    quick: tuple[str, ...] = ()
    # Benches that need a database of their own (they build large worlds).
    env: dict[str, str] = field(default_factory=dict)
    # Its name in --only and in docs/performance.md's markers, when one module runs twice
    # (bench.mixed on one process and on two behind Caddy); the module's name otherwise.
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.module


BENCHES = [
    Bench("pages", ("--threads", "10,100000", "--projects", "10,10000"),
          quick=("--threads", "10,5000", "--projects", "10,100", "--requests", "50")),
    Bench("sends", quick=("--messages", "300", "--live-messages", "100", "--memory", "500",
                          "--socket-messages", "100")),
    # Production's WebSocket implementation beside the deprecated one: the table behind
    # deploy/web.sh's --ws (issue 24, goal 5).
    Bench("live", ("--ws", "websockets"),
          quick=("--messages", "100", "--idle", "300", "--customers", "300", "--ws", "websockets")),
    Bench("search", quick=("--entries", "20000", "--requests", "30")),
    Bench("inbound", quick=("--messages", "100")),
    Bench("deliveries", quick=("--messages", "300")),
    Bench("mixed", quick=("--seconds", "20", "--projects", "2000", "--idle", "300")),
    Bench("mixed", ("--web", "2"), name="mixed_web2",
          quick=("--web", "2", "--seconds", "20", "--projects", "2000", "--idle", "300")),
    Bench("burst", quick=("--projects", "200", "--bursts", "2")),
    Bench("staff_search", quick=("--customers", "2000", "--requests", "30")),
    Bench("insights", quick=("--customers", "500", "--entries", "50000", "--repeat", "3")),
    Bench("announcements", quick=("--customers", "200",)),
    Bench("transcripts", quick=("--entries", "10000",)),
    Bench("requests_calendar", quick=("--requests", "30", "--posts", "10")),
]  # fmt: skip


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _checkout(rev: str) -> Path:
    """REV's code in a temporary worktree, with this checkout's harness laid over it."""
    where = Path(tempfile.mkdtemp(prefix="porchlight-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), rev],
        cwd=harness.ROOT, check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(where / "bench")
    shutil.copytree(harness.ROOT / "bench", where / "bench")
    shutil.copy2(harness.ROOT / "tests" / "servers.py", where / "tests" / "servers.py")
    return where


def _remove_checkout(where: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(where)],
        cwd=harness.ROOT, check=False, capture_output=True,
    )  # fmt: skip


def run_one(bench: Bench, *, cwd: Path, env: dict[str, str], quick: bool) -> dict:
    args = bench.quick if quick else bench.args
    command = [sys.executable, "-m", f"bench.{bench.module}", *args]
    load_before, started = _load(), time.monotonic()
    print(f"$ {' '.join(command[1:])}   (load {load_before})", flush=True)
    result = subprocess.run(  # noqa: S603 - our own benches
        command, cwd=cwd, env={**env, **bench.env}, capture_output=True, text=True
    )
    output = result.stdout.rstrip()
    if result.returncode:
        output += f"\n(exit {result.returncode})\n" + "\n".join(result.stderr.splitlines()[-15:])
    print(output, flush=True)
    return {
        "command": "python -m " + " ".join([f"bench.{bench.module}", *args]),
        "load_before": load_before,
        "load_after": _load(),
        "seconds": time.monotonic() - started,
        "output": output,
    }


def render(label: str, rev: str, result: dict, *, quick: bool) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"`{result['command']}` · {label}: {rev}{' (quick sizes)' if quick else ''} · "
            f"{when} · load {result['load_before']} → {result['load_after']} · "
            f"{result['seconds']:.0f} s",
            "",
            "```",
            result["output"],
            "```",
        ]
    )


def write(label: str, module: str, block: str) -> None:
    """Replace this bench's block of this label ("before" or "after") in docs/performance.md,
    keeping every other: a run of some benches leaves the others' figures as they were."""
    section = "## Every bench, before and after (python -m bench.all)"
    begin, end = (
        f"<!-- bench.all {label} {module}: begin -->",
        f"<!-- bench.all {label} {module}: end -->",
    )
    text = DOC.read_text()
    if section not in text:
        text = (
            f"{text.rstrip()}\n\n{section}\n\n"
            "Written by `python -m bench.all` (`make bench`): each bench's table as it printed\n"
            "it, the load average (1, 5, 15 minutes) read before and after it beside it. The\n"
            "machine is shared: read each figure against the bare view the same bench measured\n"
            "in the same run.\n"
        )
    if begin in text:
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}"
    else:
        # Beside the same bench's other block (before above after), else at the end.
        other = "after" if label == "before" else "before"
        other_begin = f"<!-- bench.all {other} {module}: begin -->"
        other_end = f"<!-- bench.all {other} {module}: end -->"
        mine = f"{begin}\n{block}\n{end}"
        if label == "after" and other_end in text:
            head, tail = text.split(other_end, 1)
            text = f"{head}{other_end}\n\n{mine}{tail}"
        elif label == "before" and other_begin in text:
            head, tail = text.split(other_begin, 1)
            text = f"{head}{mine}\n\n{other_begin}{tail}"
        else:
            text = f"{text.rstrip()}\n\n{mine}\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="measure REV's code as the 'before' run")
    parser.add_argument("--only", help="comma-separated bench names (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    chosen = BENCHES
    if args.only:
        names = args.only.split(",")
        chosen = [b for b in BENCHES if b.key in names]

    os.environ.setdefault("DATABASE_URL", harness.DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", harness.DEFAULT_REDIS_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    env = {**os.environ, "PORCHLIGHT_ENV_FILE": ""}
    cwd, label = harness.ROOT, "after"
    rev = subprocess.check_output(
        ["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, text=True
    ).strip()
    if args.before:
        label, cwd = "before", _checkout(args.before)
        rev = subprocess.check_output(
            ["git", "rev-parse", "--short", args.before], cwd=harness.ROOT, text=True
        ).strip()
        env["DATABASE_URL"] = env["DATABASE_URL"].rstrip("/") + "_before"
    try:
        for bench in chosen:
            result = run_one(bench, cwd=cwd, env=env, quick=args.quick)
            if not args.no_write:  # as each finishes: a long run stopped halfway keeps its part
                write(label, bench.key, render(label, rev, result, quick=args.quick))
    finally:
        if args.before:
            _remove_checkout(cwd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
