"""Run the fake providers by hand: `python -m tests.fakes` (see docs/notifications.md).

Starts the fake Twilio, the fake Postmark and the fake push service on fixed ports of
127.0.0.1, prints the environment that points Porchlight at them, then prints every request
as it arrives. Ctrl-C stops them.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.postmark import FakePostmark
from tests.fakes.push import FakePushService
from tests.fakes.twilio import FakeTwilio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twilio-port", type=int, default=8701)
    parser.add_argument("--postmark-port", type=int, default=8702)
    parser.add_argument("--push-port", type=int, default=8703)
    parser.add_argument(
        "--vapid-public-key", default="", help="refuse pushes signed with any other key"
    )
    parser.add_argument(
        "--no-callbacks",
        action="store_true",
        help="do not call Twilio status callbacks (sent, delivered) back",
    )
    args = parser.parse_args()

    twilio = FakeTwilio(port=args.twilio_port, verbose=True, callbacks=not args.no_callbacks)
    postmark = FakePostmark(port=args.postmark_port, verbose=True)
    push = FakePushService(
        port=args.push_port, verbose=True, vapid_public_key=args.vapid_public_key
    )
    for fake in (twilio, postmark, push):
        fake.start()

    env = {**twilio.settings(), **postmark.settings()}
    anymail = env.pop("ANYMAIL")
    print("Fake providers running. Point Porchlight at them with:\n")
    for key, value in env.items():
        print(f"export {key}='{value}'")
    print(f"export ANYMAIL_POSTMARK_SERVER_TOKEN='{anymail['POSTMARK_SERVER_TOKEN']}'")
    print(f"export ANYMAIL_POSTMARK_API_URL='{anymail['POSTMARK_API_URL']}'")
    print(f"export ANYMAIL_WEBHOOK_SECRET='{anymail['WEBHOOK_SECRET']}'")
    print("export WEB_PUSH_ENDPOINT_HOSTS='127.0.0.1'")
    print(
        f"\nA push subscription with keys this fake holds: curl -s -X POST {push.url}/subscriptions"
    )
    print(
        "A text from Sarah to Porchlight (the fake signs and posts Twilio's webhook):\n"
        f"  curl -s {twilio.url}/_control/inbound -d From=+15555550123 -d Body='Hi Mike'"
        " [-d Photo=/path/to/photo.jpg] [-d Webhook=http://127.0.0.1:8000/webhooks/twilio/sms/]"
    )
    print("Received pushes are printed decrypted below.\n", flush=True)

    push.on_push = lambda received: print(
        f"[fake-push] decrypted (TTL {received.ttl}, Urgency {received.urgency}): "
        f"{received.payload}",
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for fake in (twilio, postmark, push):
            fake.stop()


if __name__ == "__main__":
    main()
