"""Point the test process's Celery app at a real broker for a while (tasks really published,
not run inline): a dead one to act out a Redis outage, or a dedicated Redis database shared
with a real worker."""

from __future__ import annotations

from contextlib import contextmanager

from portal.celery import app


def _drop_connection_pools() -> None:
    # The app caches its pools; forgetting them (what Celery itself does after a fork) makes
    # the next publish take the pool of the broker now configured. Not closed: kombu keeps
    # one pool per broker URL in a global registry and would hand the closed one back.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def publishing_to(broker_url: str):
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = broker_url
    app.conf.task_always_eager = False
    _drop_connection_pools()
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        _drop_connection_pools()
