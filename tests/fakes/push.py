"""A fake Web Push service (RFC 8030) that does what a real one must: it checks the VAPID
JWT's signature against the key in the request (and, if told, the server's known public
key), its audience and expiry, and it decrypts the aes128gcm payload (RFC 8291) with the
subscription's private key and auth secret — keys only the fake and the "browser" know.

`new_subscription()` plays the browser: it makes a key pair and auth secret and returns what
`PushSubscription.toJSON()` would. Received pushes land in `pushes`, decrypted; refused
ones in `rejections`, with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.fakes.base import FakeServer, Recorded, Reply

MAX_PAYLOAD = 4096


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Push:
    subscription_id: str
    payload: dict | str
    ttl: str
    urgency: str
    vapid_subject: str


class FakePushService(FakeServer):
    name = "fake-push"

    def __init__(self, *, vapid_public_key: str = "", **kwargs):
        super().__init__(**kwargs)
        self.vapid_public_key = vapid_public_key
        self.pushes: list[Push] = []
        self.rejections: list[str] = []
        # Called with each push received (decrypted); `python -m tests.fakes` prints them.
        self.on_push: Callable[[Push], None] | None = None
        self._keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._gone: dict[str, int] = {}

    # -- the browser's side ---------------------------------------------------------------

    def new_subscription(self) -> dict:
        subscription_id = uuid.uuid4().hex
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self._keys[subscription_id] = (private, auth)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/{subscription_id}",
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
        }

    def expire(self, endpoint: str, status: int = 410) -> None:
        """The push service forgets this subscription: it answers `status` (404/410)."""
        self._gone[endpoint.rsplit("/", 1)[-1]] = status

    def fail_next(self, *statuses: int) -> None:
        for status in statuses:
            self.script(Reply(status, "push service trouble"))

    # -- the service ----------------------------------------------------------------------

    def respond(self, request: Recorded) -> Reply:
        path = urlsplit(request.path).path
        if request.method == "POST" and path == "/subscriptions":
            return Reply(201, self.new_subscription())
        if request.method != "POST" or not path.startswith("/push/"):
            return Reply(404, "not found")
        subscription_id = path.removeprefix("/push/")
        if subscription_id in self._gone:
            return Reply(self._gone[subscription_id], "subscription gone")
        if subscription_id not in self._keys:
            return Reply(404, "no such subscription")
        if len(request.body) > MAX_PAYLOAD:
            return Reply(413, "payload too large")
        try:
            subject = self._check_vapid(request)
            payload = self._decrypt(request, subscription_id)
        except ValueError as exc:
            self.rejections.append(str(exc))
            return Reply(400 if "header" in str(exc) else 403, str(exc))
        push = Push(
            subscription_id=subscription_id,
            payload=payload,
            ttl=request.header("TTL"),
            urgency=request.header("Urgency"),
            vapid_subject=subject,
        )
        self.pushes.append(push)
        if self.on_push is not None:
            self.on_push(push)
        return Reply(201, None, headers={"Location": f"{self.url}/message/{uuid.uuid4().hex}"})

    def describe(self, request: Recorded) -> str:
        return f"{request.method} {request.path} ({len(request.body)} bytes)"

    def _check_vapid(self, request: Recorded) -> str:
        if not request.header("TTL").isdigit():
            raise ValueError("missing or malformed TTL header")
        if request.header("Urgency") not in {"very-low", "low", "normal", "high"}:
            raise ValueError("missing or malformed Urgency header")
        scheme, _, params = request.header("Authorization").partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError("Authorization is not a vapid header")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, key = fields.get("t", ""), fields.get("k", "")
        if self.vapid_public_key and key != self.vapid_public_key:
            raise ValueError("VAPID key is not the application server key of the subscription")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(key)
            )
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"malformed VAPID token: {exc}") from exc
        if header.get("alg") != "ES256" or len(signature) != 64:
            raise ValueError("VAPID token is not ES256")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("VAPID signature does not verify") from None
        if claims.get("aud") != self.url:
            raise ValueError(f"VAPID audience {claims.get('aud')!r} is not {self.url!r}")
        expires = int(claims.get("exp", 0))
        if not time.time() < expires <= time.time() + 24 * 3600:
            raise ValueError("VAPID token expired or valid for more than 24 hours")
        subject = str(claims.get("sub", ""))
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("VAPID subject must be a mailto: or https: URL")
        return subject

    def _decrypt(self, request: Recorded, subscription_id: str) -> dict | str:
        if request.header("Content-Encoding") != "aes128gcm":
            raise ValueError("Content-Encoding header must be aes128gcm")
        private, auth = self._keys[subscription_id]
        try:
            plain = http_ece.decrypt(
                request.body, private_key=private, auth_secret=auth, version="aes128gcm"
            )
        except Exception as exc:  # http_ece raises several types for a bad ciphertext
            raise ValueError(f"payload does not decrypt: {exc}") from exc
        text = plain.decode()
        try:
            return json.loads(text)
        except ValueError:
            return text
