"""The contractor's CRM receiving Porchlight's outbound events: verifies every request with
the official `standardwebhooks` library (any of `secrets`), answers 204, and keeps each
verified event once per `webhook-id`, as a receiver should (a redelivery is acknowledged and
ignored)."""

from __future__ import annotations

import json

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.base import FakeServer, Recorded, Reply


class FakeCrmReceiver(FakeServer):
    name = "crm-receiver"

    def __init__(self, *, secrets: list[str], **kwargs):
        super().__init__(**kwargs)
        self.secrets = list(secrets)
        self.events: dict[str, dict] = {}  # webhook-id -> the event, first delivery only
        self.verified_with: dict[str, list[str]] = {}  # webhook-id -> the secrets that matched

    def verify(self, request: Recorded, secret: str) -> dict:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return Webhook(secret).verify(request.body, headers)

    def respond(self, request: Recorded) -> Reply:
        matched, event = [], None
        for secret in self.secrets:
            try:
                event = self.verify(request, secret)
            except WebhookVerificationError:
                continue
            matched.append(secret)
        if event is None:
            return Reply(401, {"error": "bad signature"})
        webhook_id = request.header("webhook-id")
        with self._lock:
            self.events.setdefault(webhook_id, event)
            self.verified_with.setdefault(webhook_id, matched)
        return Reply(204)

    def describe(self, request: Recorded) -> str:
        try:
            return f"{json.loads(request.body)['type']} {request.header('webhook-id')}"
        except (ValueError, KeyError):
            return super().describe(request)
