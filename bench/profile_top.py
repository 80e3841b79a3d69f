"""Where the time went: the top frames of a py-spy recording (`--format raw`, collapsed
stacks), by inclusive share of the samples (a frame counts once per sample it is on).

    .venv/bin/python -m bench.profile_top /tmp/prof/sends.txt [--top 25] [--match REGEX]

Samples of idle threads (waiting in the event loop's selector or an executor's queue) are
left out, so shares are of the time the process was doing something. --match keeps only
frames whose text matches (e.g. 'messaging|notifications|portal' for our own code).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = re.compile(
    r"select \(selectors\.py|_worker \(concurrent/futures/thread\.py.*;get \(queue\.py|"
    r"wait \(threading\.py|epoll|_run_once \(asyncio/base_events\.py:\d+\)$"
)


def _frames(stack: str) -> list[str]:
    # "function (path/to/file.py:123)" -> "function (file.py)": lines would split a function.
    return [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]


def top(raw: Path, *, limit: int = 25, match: str = "") -> tuple[int, list[tuple[str, int]]]:
    counts: Counter = Counter()
    total = 0
    wanted = re.compile(match) if match else None
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or IDLE.search(stack):
            continue
        n = int(count)
        total += n
        for frame in set(_frames(stack)):
            if wanted is None or wanted.search(frame):
                counts[frame] += n
    return total, counts.most_common(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="")
    args = parser.parse_args(argv)
    total, rows = top(args.raw, limit=args.top, match=args.match)
    print(f"{total} busy samples")
    for frame, n in rows:
        print(f"{n / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
