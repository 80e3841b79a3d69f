"""Load the demo: Mike's Contracting, Sarah and her deck thread, Daniel and his kitchen.

Idempotent: records are looked up by natural keys and every entry carries a `demo:` key, so
running it again changes nothing. The thread ends today (or yesterday, before 10:30am), so
day headers read as in the design ("Today — ...").
Entries are loaded with `notify=False`: loading the demo texts, emails and pushes nobody.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from messaging import actions
from messaging.models import Entry, Side
from portal.models import Business, Customer, Project

DEMO_STAFF_PASSWORD = "porchlight-demo"  # noqa: S105 - demo data, printed by `make run`


class Command(BaseCommand):
    help = "Load idempotent demo data (Mike's Contracting, Sarah, Daniel, staff user mike)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        business, _ = Business.objects.get_or_create(
            name="Mike's Contracting",
            defaults={
                "initials": "MC",
                "phone": "+15555550100",
                "sms_number": "+15555550100",
                "email": "office@mikescontracting.example",
                "time_zone": "America/New_York",
            },
        )
        mike, created = User.objects.get_or_create(
            username="mike",
            defaults={"first_name": "Mike", "email": "mike@mikescontracting.example"},
        )
        if created:
            mike.is_staff = True
            mike.is_superuser = True
            mike.set_password(DEMO_STAFF_PASSWORD)
            mike.save()

        sarah = self._customer(
            business, "Sarah Mitchell", "sarah@example.com", "+15555550123", "sarah"
        )
        daniel = self._customer(
            business, "Daniel Ortiz", "daniel@example.com", "+15555550188", "daniel"
        )
        deck, _ = Project.objects.get_or_create(
            code="PRJ-1042",
            defaults={
                "customer": sarah,
                "title": "Deck Replacement Project",
                "status": Project.Status.ACTIVE,
                "plan_type": "Premium Plan",
            },
        )
        kitchen, _ = Project.objects.get_or_create(
            code="PRJ-1043",
            defaults={
                "customer": daniel,
                "title": "Kitchen Remodel",
                "status": Project.Status.PLANNING,
                "plan_type": "Standard Plan",
            },
        )
        self._sarah_thread(sarah, deck, mike, business)
        self._daniel_thread(daniel, kitchen, mike)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _customer(self, business, name, email, phone, username) -> Customer:
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": email, "first_name": name.split()[0]}
        )
        customer, _ = Customer.objects.get_or_create(
            user=user,
            defaults={
                "business": business,
                "name": name,
                "email": email,
                "phone": phone,
                "time_zone": "America/New_York",
            },
        )
        return customer

    def _sarah_thread(self, sarah, deck, mike, business) -> None:
        tz = zoneinfo.ZoneInfo(sarah.time_zone)
        now = timezone.now().astimezone(tz)
        # The thread's last day is today, unless its 10:22am reply would still be in the
        # future; then it ends yesterday.
        today = now.date() if now.time() >= dt.time(10, 30) else now.date() - dt.timedelta(1)

        def at(days_ago: int, hour: int, minute: int) -> dt.datetime:
            day = today - dt.timedelta(days=days_ago)
            return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

        thread = actions.ensure_thread(customer=sarah)
        if Entry.objects.filter(thread=thread, idempotency_key="demo:sarah:1").exists():
            return
        actions.post_automated_message(
            thread=thread,
            body="Hi Sarah! Your deck project is scheduled for Thursday 8–9am. "
            "Reply CONFIRM to confirm.",
            channel=Entry.Channel.SMS,
            project=deck,
            idempotency_key="demo:sarah:1",
            at=at(2, 8, 2),
            notify=False,
        )
        actions.post_customer_reply(
            customer=sarah,
            body="CONFIRM",
            channel=Entry.Channel.SMS,
            project=deck,
            idempotency_key="demo:sarah:2",
            at=at(2, 8, 47),
            notify=False,
        )
        actions.log_call(
            thread=thread,
            started_at=at(2, 16, 12),
            duration_seconds=6 * 60,
            transcript="Sarah asked whether the cedar stain needs a second coat.",
            author=mike,
            project=deck,
            idempotency_key="demo:sarah:3",
        )
        actions.add_internal_note(
            thread=thread,
            author=mike,
            body="Gate code 4512; the dog is friendly.",
            project=deck,
            idempotency_key="demo:sarah:4",
            at=at(2, 16, 25),
        )
        actions.mark_read(thread=thread, side=Side.STAFF, at=at(2, 16, 30))
        actions.post_automated_message(
            thread=thread,
            body="Good morning Sarah! Our crew is on their way — arriving in about 20 minutes.",
            channel=Entry.Channel.SMS,
            project=deck,
            urgent=True,
            idempotency_key="demo:sarah:5",
            at=at(1, 7, 48),
            notify=False,
        )
        actions.mark_read(thread=thread, side=Side.CUSTOMER, at=at(1, 7, 50))
        actions.post_staff_message(
            thread=thread,
            author=mike,
            body="Hi Sarah, how did the deck come out? Hope you love it!",
            channel=Entry.Channel.SMS,
            project=deck,
            idempotency_key="demo:sarah:6",
            at=at(0, 10, 15),
            notify=False,
        )
        actions.post_event_card(
            thread=thread,
            card_kind=Entry.CardKind.INVOICE,
            title="Invoice #2041 sent — $4,200",
            link_url="/invoices/#invoice-2041",
            project=deck,
            idempotency_key="demo:sarah:7",
            at=at(0, 10, 16),
            notify=False,
        )
        actions.mark_read(thread=thread, side=Side.CUSTOMER, at=at(0, 10, 20))
        actions.post_customer_reply(
            customer=sarah,
            body="Sounds good! What time works for you?",
            project=deck,
            idempotency_key="demo:sarah:8",
            at=at(0, 10, 22),
            notify=False,
        )

    def _daniel_thread(self, daniel, kitchen, mike) -> None:
        thread = actions.ensure_thread(customer=daniel)
        if Entry.objects.filter(thread=thread, idempotency_key="demo:daniel:1").exists():
            return
        now = timezone.now()
        actions.post_staff_message(
            thread=thread,
            author=mike,
            body="Hi Daniel, the cabinet samples arrive Monday. Want us to bring them by?",
            channel=Entry.Channel.EMAIL,
            project=kitchen,
            idempotency_key="demo:daniel:1",
            at=now - dt.timedelta(days=4, hours=3),
            notify=False,
        )
        actions.post_customer_reply(
            customer=daniel,
            body="Yes please — any time after 3pm works.",
            channel=Entry.Channel.EMAIL,
            project=kitchen,
            idempotency_key="demo:daniel:2",
            at=now - dt.timedelta(days=4, hours=1),
            notify=False,
        )
        actions.mark_read(thread=thread, side=Side.STAFF, at=now - dt.timedelta(days=4))
