"""What one send costs the services, counted by the services themselves: database
transactions by PostgreSQL's own statistics, Redis commands by Redis MONITOR (this test's
database only, scripts' inner commands not counted). A change that adds round trips to every
send fails here. bench/sends.py measures the same through the real server, with open tabs;
docs/performance.md has both."""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.parse
import uuid

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import connection

from notifications.models import NotificationPreferences
from portal.celery import app

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# A staff message to a customer with SMS and email on. Transactions: the user, the thread,
# the entry with its two Delivery rows (the email held for the email delay); the response's
# status lines come from the rows the append wrote (notifications.queries.attach_deliveries),
# which were a fourth query until then.
# Redis: the session (cached_db reads the cache), the rate limit (django-ratelimit's add,
# then the cache's incr, one script in portal/cache.py: Django's was EXISTS and INCRBY),
# the frame published to the customer's, the staff's and the staff inbox's groups by one
# script (messaging.live), and one message queueing both deliveries: the SMS now, the held
# email within outbox.MAX_COUNTDOWN (the worker queues it at its time).
SEND_TRANSACTIONS = 3
SEND_REDIS_COMMANDS = 5


def others_reported(timeout: float = 30.0) -> None:
    """Until every other connection to this database has reported its commits.
    pg_stat_database counts every backend's, and a backend reports them when it exits, or
    within 10 s of going idle (PostgreSQL's PGSTAT_IDLE_INTERVAL): the pool's idle
    connections, used by earlier tests, once reported ten commits inside the counted send (at
    load 12). So: every other backend gone or idle for 11 s, and the count moving by this
    function's own reading only."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND (state <> 'idle' OR state_change > now() - interval '11 seconds')"
            )
            settled = cursor.fetchone()[0] == 0
        if settled:
            first = committed_transactions()
            time.sleep(0.1)
            if committed_transactions() - first == 3:
                return
        if time.monotonic() > deadline:
            pytest.fail("other connections to the test database kept working for 30 s")
        time.sleep(0.2)


def committed_transactions() -> int:
    """This database's committed transactions, as PostgreSQL counts them, this connection's
    included (it flushes its own statistics first). Reading costs a fixed 3."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


class RedisCommands:
    """The commands clients send to our Redis database while the block runs (MONITOR sees
    every client; a script's own commands, client "lua", are not round trips)."""

    def __init__(self, url: str):
        self.url = url
        self.db = int(urllib.parse.urlsplit(url).path.strip("/") or 0)
        self.commands: list[str] = []
        self._end = f"end-{uuid.uuid4().hex}"

    def __enter__(self) -> RedisCommands:
        # The end marker's client connects now, so its own SELECT is not counted.
        self._marker = redis.Redis.from_url(self.url)
        self._marker.ping()
        self._monitor = redis.Redis.from_url(self.url).monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        for command in self._monitor.listen():
            if self._end in command["command"]:
                return
            if command["db"] == self.db and command["client_type"] != "lua":
                self.commands.append(command["command"])

    def __exit__(self, *exc) -> None:
        # A marker through the same server: once MONITOR shows it, it has shown all before it.
        self._marker.echo(self._end)
        self._thread.join(timeout=10)
        self._monitor.__exit__(*exc)
        self._marker.close()


@pytest.fixture
def queued_to_redis(settings):
    """Tasks go to the broker and the cache is Redis, as in production (other tests run
    tasks inline and keep a cache in memory); whatever this test queued is purged after it."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "portal.cache.SharedPoolRedisCache", "LOCATION": settings.REDIS_URL},
    }
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True
    app.control.purge()


def _send(staff_client, thread, n: int):
    response = staff_client.post(
        f"/staff/chat/{thread.pk}/send/",
        {"body": f"Crew arrives at {n}", "key": f"cost-{n}"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200


def test_a_send_costs_a_fixed_number_of_transactions_and_redis_commands(
    staff_client, thread, queued_to_redis
):
    # No quiet hours whatever the real clock says: held deliveries queue no task, and the
    # count would depend on the hour the suite runs.
    prefs, _ = NotificationPreferences.objects.get_or_create(
        customer=thread.customer, defaults={"time_zone": thread.customer.time_zone}
    )
    prefs.quiet_hours_enabled = False
    prefs.save()
    # Sessions, caches and connections are warm after one send; the server's scripts after
    # two (the first send's rate limit only adds its counter, the second increments it, and
    # on a fresh Redis that script is loaded first: two commands more). The sends are made
    # at one instant of a stopped clock: the limit's window is a whole minute, and a send
    # in the next one would only add a new counter (one command less).
    instant = dt.datetime.now(dt.UTC)
    with time_machine.travel(instant, tick=False):
        _send(staff_client, thread, 0)
        _send(staff_client, thread, 1)
    others_reported()  # on the real clock: it waits
    before = committed_transactions()
    stopped = time_machine.travel(instant, tick=False)
    with stopped, RedisCommands(settings.REDIS_URL) as redis_commands:
        _send(staff_client, thread, 2)
    transactions = committed_transactions() - before - 3
    assert thread.entries.count() == 3
    assert (transactions, len(redis_commands.commands)) == (
        SEND_TRANSACTIONS,
        SEND_REDIS_COMMANDS,
    ), "\n".join(c[:100] for c in redis_commands.commands)
