from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from portal.actions import login_url_for


class Command(BaseCommand):
    help = "Print a one-time sign-in URL (10 minutes) for a customer's email or a username."

    def add_arguments(self, parser) -> None:
        parser.add_argument("who", help="A customer's email address or a username")

    def handle(self, *args, who: str, **options) -> None:
        User = get_user_model()
        matches = list(
            User.objects.filter(
                Q(username__iexact=who) | Q(email__iexact=who) | Q(customer__email__iexact=who),
                is_active=True,
            ).distinct()[:2]
        )
        if not matches:
            raise CommandError(f"No active user has the username or email {who!r}.")
        if len(matches) > 1:
            raise CommandError(f"{who!r} matches more than one user; use the username.")
        self.stdout.write(login_url_for(user=matches[0]))
