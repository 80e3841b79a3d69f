from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand
from django.core.management.utils import get_random_secret_key

from portal import devenv


class Command(BaseCommand):
    help = (
        "Write the development .env (make run does): a generated SECRET_KEY (kept once made), "
        "DEBUG=1, SITE_URL and ALLOWED_HOSTS of the address served. Prints SITE_URL."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--env-file", type=Path, default=devenv.ENV_FILE)

    def handle(self, *args, host: str, port: int, env_file: Path, **options) -> None:
        site_url, allowed, others = devenv.served_urls(host, port)
        current = devenv.read(env_file)
        devenv.update(
            {
                "SECRET_KEY": current.get("SECRET_KEY") or get_random_secret_key(),
                # A webhook with no secret refuses everything: give the CRM API one to try.
                "CRM_WEBHOOK_SECRET": current.get("CRM_WEBHOOK_SECRET") or devenv.new_whsec(),
                "DEBUG": "1",
                "SITE_URL": site_url,
                "ALLOWED_HOSTS": ",".join(allowed),
            },
            env_file,
        )
        self.stdout.write(site_url)
        for url in others:
            self.stderr.write(f"Also reachable on your network at {url}")
