"""The reliability suite (docs/reliability.md): R1-R10, one test each, at the sizes the
issue names. Each test states its figures through the `figures` fixture; they are printed
together at the end of the run ("reliability figures", tests/conftest.py), so that the numbers in
docs/reliability.md come from a run anyone can repeat:

    CI=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/porchlight \
        REDIS_URL=redis://127.0.0.1:6379/0 SECRET_KEY=x PORCHLIGHT_ENV_FILE= \
        .venv/bin/pytest tests/reliability
"""

from __future__ import annotations

import time

import pytest


class Figures:
    """What one R-test measured, as "R1: 20 replays -> 1 entry, ..." lines. They travel with
    the test's report, so that under xdist (`make test`) they reach the main process too."""

    def __init__(self, name: str, item):
        self.name = name
        self.item = item
        self.started = time.perf_counter()

    def __call__(self, text: str) -> None:
        seconds = time.perf_counter() - self.started
        self.item.user_properties.append(
            ("reliability figure", f"{self.name}: {text} ({seconds:.1f} s)")
        )


@pytest.fixture
def figures(request) -> Figures:
    name = request.node.module.__name__.rsplit(".", 1)[-1].split("_")[1].upper()
    return Figures(name, request.node)
