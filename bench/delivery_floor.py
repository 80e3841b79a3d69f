"""The floor of bench.deliveries: a Celery task that does nothing but one provider call.

Loaded into the same worker command line with `--include bench.delivery_floor` (only for the
floor's run; production's worker never imports it). Each task POSTs a small form to a fake
answering after the same latency, on a requests session kept per thread as the transports
keep theirs: what is left of a delivery's time and CPU with no database, no rendering and no
broadcast is Celery's own (the broker, the thread pool, the log) and the HTTP client's.
"""

from __future__ import annotations

import threading

import requests
from celery import shared_task

from tests.fakes.base import FakeServer, Recorded, Reply

FLOOR_TASK = "bench.floor_deliver"

_local = threading.local()


@shared_task(name=FLOOR_TASK, ignore_result=True)
def floor_deliver(url: str, n: int) -> str:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    session.post(url, data={"To": "+15555550100", "Body": f"Floor {n}."}, timeout=10)
    return "sent"


class FloorProvider(FakeServer):
    """A provider that takes anything and answers 200 after its latency."""

    name = "floor"

    def respond(self, request: Recorded) -> Reply:
        return Reply(200, {"sid": f"FL{len(self.requests)}"})
