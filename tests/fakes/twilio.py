"""A fake Twilio: the Messages API (POST /2010-04-01/Accounts/{AccountSid}/Messages.json)
and the media of texts it received.

Checks HTTP Basic auth (AccountSid:AuthToken) like Twilio, answers 201 with a message
resource, and can answer with Twilio's errors: per number (`fail_number`) or for the next
requests (`fail_next`). With `callbacks=True` it also calls the message's StatusCallback
("sent", then "delivered"), signed with the auth token as Twilio signs them.

Media: `add_media(data, content_type)` gives the MediaUrl Twilio would put in its webhook:
an API URL that wants the account's credentials and redirects (307) to a CDN URL that
serves the bytes, as Twilio's does. `inbound(...)` builds a signed webhook request.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from twilio.request_validator import RequestValidator

from tests.fakes.base import FakeServer, Recorded, Reply

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")
MEDIA_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages/(?P<message>\w+)/Media/(?P<media>ME\w+)$"
)
CDN_PATH = re.compile(r"^/cdn/(?P<media>ME\w+)$")

# Twilio's own messages for the codes tests use.
ERRORS = {
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    30003: (400, "Unreachable destination handset"),
    30006: (400, "Landline or unreachable carrier"),
}


@dataclass
class SentSms:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    media_urls: list[str] = field(default_factory=list)


def twilio_error(code: int, to: str = "") -> Reply:
    status, message = ERRORS[code]
    return Reply(
        status,
        {
            "code": code,
            "message": message.format(to=to),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio(FakeServer):
    name = "fake-twilio"

    def __init__(
        self,
        *,
        account_sid: str = "ACfake00000000000000000000000000",
        auth_token: str = "fake-auth-token",
        callbacks: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callbacks = callbacks
        self.messages: list[SentSms] = []
        self._number_errors: dict[str, int] = {}
        self.media: dict[str, tuple[bytes, str]] = {}

    def settings(self) -> dict:
        """Django settings that point the real twilio client here."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_FROM_NUMBER": "+15555550142",  # Porchlight's Twilio number
            "TWILIO_API_BASE_URL": self.url,
        }

    def fail_number(self, number: str, code: int) -> None:
        """Every message to `number` fails with Twilio error `code`."""
        self._number_errors[number] = code

    def fail_next(self, *codes_or_statuses: int) -> None:
        """The next requests fail: a Twilio code (21211...) or a bare HTTP status (500)."""
        for value in codes_or_statuses:
            if value in ERRORS:
                self.script(twilio_error(value))
            else:
                self.script(Reply(value, {"message": "Internal error", "status": value}))

    def add_media(self, data: bytes, content_type: str, *, message_sid: str = "") -> str:
        """Keep a received photo; returns its MediaUrl."""
        media_sid = "ME" + uuid.uuid4().hex
        self.media[media_sid] = (data, content_type)
        message_sid = message_sid or "MM" + uuid.uuid4().hex
        messages = f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages"
        return f"{messages}/{message_sid}/Media/{media_sid}"

    def inbound(
        self,
        url: str,
        *,
        sender: str,
        body: str = "",
        media: list[tuple[str, str]] = (),
        message_sid: str = "",
        **extra: str,
    ) -> tuple[dict, str]:
        """(form, X-Twilio-Signature) of Twilio's webhook for a text to our number, signed
        for `url`, the URL Twilio is configured to call."""
        message_sid = message_sid or ("MM" if media else "SM") + uuid.uuid4().hex
        form = {
            "MessageSid": message_sid,
            "SmsMessageSid": message_sid,
            "SmsSid": message_sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "To": "+15555550142",
            "Body": body,
            "NumMedia": str(len(media)),
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
            **extra,
        }
        for n, (media_url, content_type) in enumerate(media):
            form[f"MediaUrl{n}"] = media_url
            form[f"MediaContentType{n}"] = content_type
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        return form, signature

    def deliver_inbound(
        self,
        webhook_url: str,
        *,
        sender: str,
        body: str = "",
        photos: list[tuple[bytes, str]] = (),
        message_sid: str = "",
    ) -> tuple[int, str]:
        """Act out Twilio receiving a text: keep its photos, then POST the signed webhook to
        `webhook_url`, as Twilio calls an app's Messaging webhook. (status, MessageSid)."""
        message_sid = message_sid or ("MM" if photos else "SM") + uuid.uuid4().hex
        media = [(self.add_media(d, t, message_sid=message_sid), t) for d, t in photos]
        form, signature = self.inbound(
            webhook_url, sender=sender, body=body, media=media, message_sid=message_sid
        )
        request = urllib.request.Request(
            webhook_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"X-Twilio-Signature": signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, message_sid
        except urllib.error.HTTPError as error:
            return error.code, message_sid

    def _control(self, request: Recorded) -> Reply | None:
        """POST /_control/inbound (From, Body, Webhook, optional Photo: a local file path):
        for people trying Porchlight by hand (python -m tests.fakes)."""
        if request.path.split("?")[0] != "/_control/inbound" or request.method != "POST":
            return None
        form = request.form
        photos = []
        if form.get("Photo"):
            path = Path(form["Photo"]).expanduser()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            photos.append((path.read_bytes(), kind))
        status, sid = self.deliver_inbound(
            form.get("Webhook", "http://127.0.0.1:8000/webhooks/twilio/sms/"),
            sender=form.get("From", ""),
            body=form.get("Body", ""),
            photos=photos,
        )
        return Reply(200, {"webhook_status": status, "MessageSid": sid})

    def _serve_media(self, request: Recorded) -> Reply | None:
        path = request.path.split("?")[0]
        if (match := MEDIA_PATH.match(path)) is not None:
            if not self._authorized(request, match["sid"]):
                return twilio_error(20003)
            if match["media"] not in self.media:
                return Reply(404, {"code": 20404, "message": "Not found", "status": 404})
            return Reply(307, None, headers={"Location": f"{self.url}/cdn/{match['media']}"})
        if (match := CDN_PATH.match(path)) is not None:
            if request.header("Authorization"):
                return Reply(400, "credentials must not follow the redirect")
            found = self.media.get(match["media"])
            if found is None:
                return Reply(404, "no such media")
            data, content_type = found
            return Reply(200, data, headers={"Content-Type": content_type})
        return None

    def respond(self, request: Recorded) -> Reply:
        served = self._serve_media(request) or self._control(request)
        if served is not None:
            return served
        match = MESSAGES_PATH.match(request.path.split("?")[0])
        if request.method != "POST" or match is None:
            return Reply(404, {"code": 20404, "message": "Not found", "status": 404})
        if not self._authorized(request, match["sid"]):
            return twilio_error(20003)
        form = request.form
        to = form.get("To", "")
        if to in self._number_errors:
            return twilio_error(self._number_errors[to], to)
        if not re.fullmatch(r"\+[1-9]\d{7,14}", to):
            return twilio_error(21211, to)
        sid = "SM" + uuid.uuid4().hex
        sms = SentSms(
            sid=sid,
            to=to,
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback", ""),
            media_urls=parse_qs(request.body.decode()).get("MediaUrl", []),
        )
        self.messages.append(sms)
        if self.callbacks and sms.status_callback:
            threading.Thread(target=self._call_back, args=(sms,), daemon=True).start()
        return Reply(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": sms.from_,
                "body": sms.body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )

    def describe(self, request: Recorded) -> str:
        form = request.form
        if "To" in form:
            return f"SMS to {form['To']} from {form.get('From')}: {form.get('Body')!r}"
        return super().describe(request)

    def _authorized(self, request: Recorded, sid: str) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return sid == self.account_sid and request.header("Authorization") == f"Basic {expected}"

    def status_callback_request(self, sms: SentSms, status: str, error_code: str = ""):
        """(url, form data, signature) of the callback Twilio would make."""
        data = {"MessageSid": sms.sid, "MessageStatus": status, "AccountSid": self.account_sid}
        if error_code:
            data["ErrorCode"] = error_code
        signature = RequestValidator(self.auth_token).compute_signature(sms.status_callback, data)
        return sms.status_callback, data, signature

    def _call_back(self, sms: SentSms) -> None:
        for status in ("sent", "delivered"):
            url, data, signature = self.status_callback_request(sms, status)
            request = urllib.request.Request(
                url,
                data=urllib.parse.urlencode(data).encode(),
                headers={"X-Twilio-Signature": signature},
            )
            try:
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - our own URL
            except OSError as exc:
                if self.verbose:
                    print(f"[{self.name}] status callback failed: {exc}", flush=True)
