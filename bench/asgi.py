"""The app the benches serve: Porchlight's own ASGI application, plus the floor every figure
is compared with — a bare Django view (no middleware, no database) at /__bench__/bare/,
served by Django's own ASGI handler in the same server process.

    python -m daphne bench.asgi:application   (tests.servers.AsgiServer(app=...) does this)
"""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse
from django.urls import path

from portal.asgi import application as porchlight


def bare_view(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("__bench__/bare/", bare_view)]


class BareHandler(ASGIHandler):
    """Django's ASGI handler with no middleware at all, resolving against this module's
    URLconf: what any Django view costs through this server before Porchlight does anything."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def get_response_async(self, request):
        request.urlconf = __name__
        return await super().get_response_async(request)


bare = BareHandler()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith("/__bench__/"):
        return await bare(scope, receive, send)
    return await porchlight(scope, receive, send)
