"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref

import django
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

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

    async def handle(self, scope, receive, send):
        """Django 5.2's `handle`, with the request's signals inside its one hop: Django sends
        request_started (resetting the query log, closing stale database connections) and,
        through `response.close()`, request_finished in hops of their own, before and after
        the request's. A response held whole in memory is closed in the hop, before it is
        sent; a streaming one is closed after, as Django does."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return
        answer = asyncio.create_task(self._answer(request, send))
        disconnect = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait([disconnect, answer], return_when=asyncio.FIRST_COMPLETED)
        # As Django: a client gone before the answer cancels the view; after it, nothing.
        for task in (disconnect, answer):
            if not task.done():
                task.cancel()
            try:
                await task
            except (RequestAborted, asyncio.CancelledError):
                pass
            except AssertionError:
                body_file.close()
                raise
        response = None if answer.cancelled() else answer.result()
        if response is None:
            await signals.request_finished.asend(sender=self.__class__)
        elif response.streaming:
            await sync_to_async(response.close)()
        body_file.close()

    async def _answer(self, request, send):
        response = await self.run_get_response(request)
        with contextlib.suppress(asyncio.CancelledError):  # the client left while it was sent
            await self.send_response(response, send)
        return response

    async def get_response_async(self, request):
        async with lane_for(request.method):
            return await sync_to_async(self._respond, thread_sensitive=True)(request)

    def _respond(self, request):
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        response = self.get_response(request)
        if not response.streaming:
            response._handler_class = self.__class__  # request_finished's sender, as Django's
            response.close()  # request_finished; the content is already in memory
        return response


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
