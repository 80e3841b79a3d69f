from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand

from portal import devenv


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Command(BaseCommand):
    help = (
        "Print a new VAPID key pair for Web Push, as environment variables; with --write-env, "
        "also put them in the development .env that make run and manage.py read."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--write-env", action="store_true", help="also write them to .env")
        parser.add_argument("--env-file", type=Path, default=devenv.ENV_FILE)

    def handle(self, *args, write_env: bool, env_file: Path, **options) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # Raw base64url: the private key as pywebpush reads it, the public key as browsers
        # take it for `applicationServerKey`.
        keys = {"VAPID_PUBLIC_KEY": _b64url(public), "VAPID_PRIVATE_KEY": _b64url(private)}
        for name, value in keys.items():
            self.stdout.write(f"{name}={value}")
        if write_env:
            devenv.update(keys, env_file)
            self.stderr.write(f"Written to {env_file}; restart make run to use them.")
        else:
            self.stderr.write(
                "Set these in the environment, or run `.venv/bin/python manage.py vapid_keys "
                "--write-env` to put them in the development .env."
            )
        self.stderr.write(
            "Keep the private key secret. Changing the pair invalidates every existing push "
            "subscription: devices must turn push on again."
        )
