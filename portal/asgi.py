"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

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
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


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
