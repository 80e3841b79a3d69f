"""A request that finds the database unreachable (restarting, failing over, out of
connections) answers 503 with a reason and a Retry-After, never a bare 500.

Nothing half-written is left: every write is one transaction, which the failure rolls back.
The reply box shows the reason where its other errors go and keeps the typed text and its send
key, so sending again once the database is back makes one message (deploy/test/run.sh restarts
the database under traffic to see it).
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django_htmx.http import reswap, retarget

logger = logging.getLogger(__name__)

DATABASE_DOWN = (
    "We can't reach our records for a moment, so this was not saved. Please try again in a minute."
)
RETRY_AFTER_SECONDS = 30


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable (%s %s): %s", request.method, request.path, exception)
        response = HttpResponse(
            DATABASE_DOWN,
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        if getattr(request, "htmx", False):
            # A form's reason goes where its other reasons go (the reply box's .field-error).
            response = reswap(retarget(response, "find .field-error"), "innerHTML")
        return response
