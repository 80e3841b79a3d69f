"""`/health/` for load balancers, the proxy and compose: can this web process reach what a
request needs? The database, the cache (rate-limit counters), the channel layer (live
updates) and the Celery broker (notifications). 200 when all answer; 503 with what failed.

django-health-check runs the checks concurrently, each with its own timeout. The answer is
JSON (`?format=text` for plain text); the package's HTML page carries an inline style that
our Content-Security-Policy refuses, so it is not offered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from channels.layers import get_channel_layer
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class ChannelLayer(HealthCheck):
    """A message sent to a fresh channel comes back: what every live update needs."""

    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=3), repr=False
    )

    async def run(self) -> None:
        layer = get_channel_layer()
        try:
            channel = await layer.new_channel("health.")
            await layer.send(channel, {"type": "health.ping"})
            message = await asyncio.wait_for(layer.receive(channel), self.timeout.total_seconds())
        except (TimeoutError, OSError) as error:
            raise ServiceUnavailable("channel layer unreachable") from error
        except Exception as error:  # redis-py's errors are not OSErrors
            raise ServiceUnavailable(f"channel layer: {type(error).__name__}") from error
        if message.get("type") != "health.ping":
            raise ServiceUnavailable("channel layer returned another message")


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection: notifications can be queued."""

    timeout: datetime.timedelta = dataclasses.field(
        default=datetime.timedelta(seconds=3), repr=False
    )

    def run(self) -> None:
        from portal.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=self.timeout.total_seconds())
        except Exception as error:  # kombu raises the transport's own errors
            raise ServiceUnavailable(f"broker: {type(error).__name__}") from error


class HealthView(HealthCheckView):
    checks = (Database, Cache, ChannelLayer, Broker)

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            self.results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        status = 503 if any(result.error for result in self.results) else 200
        if request.GET.get("format") == "text":
            return self.render_to_response_text(status)
        return self.render_to_response_json(status)


health = HealthView.as_view()
