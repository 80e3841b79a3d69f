"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import asyncio
import os
import weakref

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view together in one
    hop to a worker thread.

    Our middleware and views are synchronous. Django's own handler runs the middleware chain
    on the event loop and hands each synchronous method of it (process_request,
    process_response, ...) to a thread and back, then the view once more: about fifteen
    hand-offs per request, which profiling (docs/performance.md) found to be most of what an
    empty page cost beyond a bare view. Here the chain is built synchronous, as under WSGI,
    and the whole request runs in the request's own thread (thread-sensitive, so database
    connections stay with it). Async views still work: Django runs them with async_to_sync.

    The hop waits for its lane first (`lane_for`): requests that change something and
    requests that only read each run at most so many at once (settings WEB_WRITE_THREADS,
    WEB_READ_THREADS). Unbounded, every request got a thread of its own at once, and ten
    customers sending back to back kept ten threads contending for the one GIL with the
    staff list's GET and the live sockets' renders: the GET took seconds (bench.mixed).
    Waiting here costs no CPU; the thread and its semantics are unchanged.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        async with lane_for(request.method):
            return await sync_to_async(self.get_response, thread_sensitive=True)(request)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Per event loop (a semaphore belongs to the loop it first waits on; tests run several).
_lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane_for(method: str) -> asyncio.Semaphore:
    """The semaphore that bounds how many requests like this one run at once."""
    from django.conf import settings

    loop = asyncio.get_running_loop()
    lanes = _lanes.get(loop)
    if lanes is None:
        lanes = _lanes[loop] = {
            True: asyncio.Semaphore(max(1, settings.WEB_READ_THREADS)),
            False: asyncio.Semaphore(max(1, settings.WEB_WRITE_THREADS)),
        }
    return lanes[method in SAFE_METHODS]


django_asgi_app = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from messaging.routing import websocket_urlpatterns  # noqa: E402
from portal.body_limits import BodyLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over their route's limit are refused before Django spools them to disk.
        "http": BodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
