"""The floor: a bare Django view (no Porchlight middleware, no database) at
/__bench__/bare/, served by the same server process, ASGI handler and single thread hand-off
as every page (bench/settings.py puts this first in the chain)."""

from __future__ import annotations

from django.http import HttpResponse

BARE_PATH = "/__bench__/bare/"


class BareFloorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == BARE_PATH:
            return HttpResponse(b"ok", content_type="text/plain")
        return self.get_response(request)
