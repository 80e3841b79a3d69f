"""A fake Postmark email API (POST /email), for anymail's real Postmark backend.

anymail reads the API's base URL from `ANYMAIL["POSTMARK_API_URL"]`, so the real backend,
serialising real messages, talks to this server. It checks the server token, answers like
Postmark, and can refuse addresses the way Postmark does (inactive recipient: 422 with
ErrorCode 406) or fail outright (`fail_next(500)`).
"""

from __future__ import annotations

import email.utils
import uuid
from dataclasses import dataclass

from tests.fakes.base import FakeServer, Recorded, Reply


@dataclass
class SentEmail:
    message_id: str
    to: str
    from_: str
    subject: str
    text: str
    html: str
    reply_to: str
    headers: dict[str, str]


class FakePostmark(FakeServer):
    name = "fake-postmark"

    def __init__(self, *, server_token: str = "fake-postmark-token", **kwargs):
        super().__init__(**kwargs)
        self.server_token = server_token
        self.emails: list[SentEmail] = []
        self.inactive: set[str] = set()

    def settings(self) -> dict:
        """Django settings that point anymail's Postmark backend here."""
        return {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL": {
                "POSTMARK_SERVER_TOKEN": self.server_token,
                "POSTMARK_API_URL": f"{self.url}/",
                "REQUESTS_TIMEOUT": 5.0,
                "WEBHOOK_SECRET": "postmark:webhook-secret",
            },
        }

    def fail_next(self, *statuses: int) -> None:
        for status in statuses:
            self.script(Reply(status, {"ErrorCode": 0 if status >= 500 else 429, "Message": "No"}))

    def respond(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path.rstrip("/") != "/email":
            return Reply(404, {"ErrorCode": 404, "Message": "Not found"})
        if request.header("X-Postmark-Server-Token") != self.server_token:
            return Reply(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
        data = request.json()
        to = data.get("To", "")
        address = email.utils.parseaddr(to)[1].lower()
        if not address or "@" not in address:
            return Reply(422, {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."})
        if address in self.inactive:
            return Reply(
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to a recipient that has been marked as "
                    f"inactive.\nFound inactive addresses: {address}.\nInactive recipients are "
                    "ones that have generated a hard bounce or a spam complaint. ",
                },
            )
        message_id = str(uuid.uuid4())
        self.emails.append(
            SentEmail(
                message_id=message_id,
                to=to,
                from_=data.get("From", ""),
                subject=data.get("Subject", ""),
                text=data.get("TextBody", ""),
                html=data.get("HtmlBody", ""),
                reply_to=data.get("ReplyTo", ""),
                headers={h["Name"]: h["Value"] for h in data.get("Headers", [])},
            )
        )
        return Reply(
            200,
            {
                "To": to,
                "SubmittedAt": "2025-05-15T10:24:00.0000000-04:00",
                "MessageID": message_id,
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def describe(self, request: Recorded) -> str:
        if request.path.rstrip("/") == "/email" and request.body:
            data = request.json()
            return (
                f"email to {data.get('To')} — {data.get('Subject')!r}\n"
                f"{data.get('TextBody', '').strip()}\n"
            )
        return super().describe(request)
