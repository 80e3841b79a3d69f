from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from messaging.actions import ensure_thread
from notifications.reply_addresses import reply_address
from portal.models import Customer


class Command(BaseCommand):
    help = (
        "Print the reply address of a customer's thread (their email address or username): "
        "mail to it from that customer lands in their conversation."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("who", help="A customer's email address or username")

    def handle(self, *args, who: str, **options) -> None:
        matches = list(
            Customer.objects.filter(Q(email__iexact=who) | Q(user__username__iexact=who))[:2]
        )
        if not matches:
            raise CommandError(f"No customer has the email address or username {who!r}.")
        if len(matches) > 1:
            raise CommandError(f"{who!r} matches more than one customer; use the username.")
        self.stdout.write(reply_address(ensure_thread(customer=matches[0]).pk))
