"""A fake Twilio Messages API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json.

Checks HTTP Basic auth (AccountSid:AuthToken) like Twilio, answers 201 with a message
resource, and can answer with Twilio's errors: per number (`fail_number`) or for the next
requests (`fail_next`). With `callbacks=True` it also calls the message's StatusCallback
("sent", then "delivered"), signed with the auth token as Twilio signs them.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

from twilio.request_validator import RequestValidator

from tests.fakes.base import FakeServer, Recorded, Reply

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")

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

    def respond(self, request: Recorded) -> Reply:
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
