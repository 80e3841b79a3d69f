"""Load the demo: Mike's Contracting, Sarah and her deck thread, Daniel and his kitchen, Luis
(phone only, no email) and his roof; staff `mike` (Sarah's conversation is his) and `kim`
(Daniel's and Luis's are hers, and she hears of their messages by email).

Idempotent: records are looked up by natural keys and every entry carries a `demo:` key, so
running it again changes nothing. The thread ends today (or yesterday, before 10:30am), so
day headers read as in the design ("Today — ..."), and every date in it is relative to that
day and agrees with the others: the reminder two days back names the weekday of the visit,
the crew is on its way that morning, the visit is completed, and today Mike asks how the
deck came out.
Entries and CRM records are loaded with `notify=False`: loading the demo texts, emails and
pushes nobody.

The CRM records are real and made by the same actions the API and the admin use: yesterday's
"Deck install" is booked, confirmed when Sarah replies CONFIRM (history recorded with
`notify=False` runs no keyword, so the demo confirms it as the keyword would) and completed,
estimate #311 (with its terms and an optional line) waits for her approval, invoice #2041 has
its lines, a "Pay" link to the processor and a first payment of $1,000 by card, and Daniel's
kitchen has a visit next week.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from crm_events import actions as crm
from crm_events.models import Appointment, SavedReply
from messaging import actions
from messaging.models import Entry, Side
from notifications.inbound import actions as inbound
from notifications.models import StaffNotificationPreferences
from notifications.outbound import preferences
from portal import actions as portal_actions
from portal.models import Business, Customer, Project

DEMO_STAFF_PASSWORD = "porchlight-demo"  # noqa: S105 - demo data, printed by `make run`
# Luis, the phone-only customer, has the number Daniel had before issue 20.
LUIS_PHONE = "+15555550188"
DANIEL_PHONE = "+15555550145"


class Command(BaseCommand):
    help = "Load idempotent demo data (Mike's Contracting, its customers, staff mike and kim)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        self._load()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _load(self) -> None:
        User = get_user_model()
        business, _ = Business.objects.get_or_create(
            name="Mike's Contracting",
            defaults={
                "initials": "MC",
                "phone": "+15555550100",
                "sms_number": "+15555550100",
                "email": "office@mikescontracting.example",
                "address": "118 Harbor Road\nMystic, CT 06355",
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
            business, "Daniel Ortiz", "daniel@example.com", DANIEL_PHONE, "daniel"
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
        crm.crm_settings(business)
        kim = self._kim()
        self._assign(sarah, mike)
        self._assign(daniel, kim)
        self._sarah_thread(sarah, deck, mike, business)
        self._daniel_thread(daniel, kitchen, mike)
        self._unmatched_text(business)
        self._luis(business, mike, kim)
        self._visits_today()
        self._saved_replies()

    def _assign(self, customer, owner) -> None:
        """Who owns the conversation, on first load only: an assignment changed in the portal
        since stays as it is. Its note is dated before the thread's history (a week back), so
        the staff list still sorts by the demo's own messages."""
        if customer.assigned_to_id is None:
            portal_actions.assign_customer(
                customer=customer, assignee=owner, at=timezone.now() - dt.timedelta(days=7)
            )

    def _kim(self):
        """A second staff member, with customers of her own; she hears of their messages
        by email (staff notification preferences)."""
        User = get_user_model()
        kim, created = User.objects.get_or_create(
            username="kim",
            defaults={
                "first_name": "Kim",
                "last_name": "Nguyen",
                "email": "kim@mikescontracting.example",
            },
        )
        if created:
            kim.is_staff = True
            kim.set_password(DEMO_STAFF_PASSWORD)
            kim.save()
        if not StaffNotificationPreferences.objects.filter(user=kim).exists():
            preferences.update_staff_preferences(user=kim, email_enabled=True, push_enabled=True)
        return kim

    def _unmatched_text(self, business) -> None:
        # A text from a number no customer has: it waits at /staff/unmatched/ for staff to
        # assign it to a customer or dismiss it.
        inbound.receive_sms(
            sms=inbound.IncomingSms(
                message_sid="SMdemo0000000000000000000000000001",
                sender="+15555550177",
                recipient=business.sms_number,
                body="Hi, is this Mike's Contracting? Jen from Elm St here, Sarah gave me "
                "your number. Could someone look at our fence next week?",
            ),
            received_at=timezone.now() - dt.timedelta(hours=3),
        )

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
        # Yesterday's visit, booked in the CRM the morning the reminder went (the day before).
        install = crm.schedule_appointment(
            customer=sarah,
            project=deck,
            title="Deck install",
            starts_at=at(1, 8, 0),
            ends_at=at(1, 9, 0),
            crew_note="Two-person crew. Please keep the gate unlocked.",
            external_id="APT-77",
            at=at(2, 8, 0),
            notify=False,
        )
        visit_day = at(1, 8, 0).strftime("%A")
        actions.post_automated_message(
            thread=thread,
            body=f"Hi Sarah! Your deck project is scheduled for {visit_day} 8–9am. "
            "Reply CONFIRM to confirm.",
            channel=Entry.Channel.SMS,
            project=deck,
            idempotency_key="demo:sarah:1",
            at=at(2, 8, 2),
            notify=False,
        )
        # Her CONFIRM confirms Thursday's visit, with its card.
        actions.post_customer_reply(
            customer=sarah,
            body="CONFIRM",
            channel=Entry.Channel.SMS,
            project=deck,
            idempotency_key="demo:sarah:2",
            at=at(2, 8, 47),
            notify=False,
        )
        crm.confirm_appointment(appointment=install.record, at=at(2, 8, 47))
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
        crm.transition_appointment(
            appointment=install.record,
            to=Appointment.Status.COMPLETED,
            at=at(1, 9, 20),
            notify=False,
        )
        crm.send_estimate(
            customer=sarah,
            project=deck,
            number="311",
            currency="USD",
            lines=[
                crm.LineData("Cedar privacy screen, 24 ft", Decimal(1), Decimal("6200.00")),
                crm.LineData("Pergola over the grill area", Decimal(1), Decimal("3600.00")),
                crm.LineData(
                    "Second coat of cedar stain", Decimal(1), Decimal("450.00"), optional=True
                ),
            ],
            total=Decimal("9800.00"),
            valid_until=today + dt.timedelta(days=30),
            terms=(
                "50% deposit on approval, the balance on completion. Work starts within three "
                "weeks of approval, weather permitting. Prices hold until the date above."
            ),
            at=at(1, 15, 30),
            notify=False,
        )
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
        invoice = crm.send_invoice(
            customer=sarah,
            project=deck,
            number="2041",
            currency="USD",
            lines=[
                crm.LineData("Composite decking, 320 sq ft", Decimal(1), Decimal("3100.00")),
                crm.LineData("Railing and stairs", Decimal(1), Decimal("850.00")),
                crm.LineData("Haul-away of the old deck", Decimal(1), Decimal("250.00")),
            ],
            total=Decimal("4200.00"),
            due_on=today + dt.timedelta(days=14),
            payment_url="https://checkout.stripe.com/c/pay/demo_cs_2041",
            at=at(0, 10, 16),
            notify=False,
        )
        crm.record_payment(
            invoice=invoice.record,
            amount=Decimal("1000.00"),
            method="card",
            payment_id="demo_pay_2041_1",
            receipt_url="https://pay.stripe.com/receipts/demo_2041_1",
            at=at(0, 10, 18),
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
        # Earlier weeks of the conversation, each question answered by Mike: Insights' response
        # times (/staff/insights/) have something to measure.
        self._answered_questions(
            thread,
            daniel,
            mike,
            kitchen,
            Entry.Channel.EMAIL,
            [
                (
                    20,
                    9,
                    10,
                    45,
                    "Hi! We'd like a quote for remodelling our kitchen.",
                    "Happy to help, Daniel. Could you send a few photos of the room?",
                ),
                (
                    16,
                    14,
                    30,
                    200,
                    "Photos attached. Could you send the layout options?",
                    "Here are the two layouts we discussed: galley and L-shaped.",
                ),
                (
                    9,
                    19,
                    40,
                    765,
                    "Which countertop did you recommend for the island?",
                    "Quartz: it holds up best to the kids. Samples come with the cabinets.",
                ),
            ],
        )
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
        # Next week's visit, after 3pm as he asked.
        tz = zoneinfo.ZoneInfo(daniel.time_zone)
        day = timezone.localdate(now, tz) + dt.timedelta(days=7)
        starts = dt.datetime(day.year, day.month, day.day, 15, 30, tzinfo=tz)
        crm.schedule_appointment(
            customer=daniel,
            project=kitchen,
            title="Kitchen measure and cabinet samples",
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=1),
            external_id="APT-81",
            at=now - dt.timedelta(days=3, hours=22),
            notify=False,
        )

    def _answered_questions(self, thread, customer, mike, project, channel, questions) -> None:
        """(days ago, hour, minute, minutes until Mike answered, question, answer) on the
        customer's clock, oldest first."""
        tz = zoneinfo.ZoneInfo(customer.time_zone)
        today = timezone.localdate(timezone.now(), tz)
        for n, (days_ago, hour, minute, delay, question, answer) in enumerate(questions, 1):
            day = today - dt.timedelta(days=days_ago)
            asked = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            actions.post_customer_reply(
                customer=customer,
                body=question,
                channel=channel,
                project=project,
                idempotency_key=f"demo:{customer.user.username}:asked:{n}",
                at=asked,
                notify=False,
            )
            actions.post_staff_message(
                thread=thread,
                author=mike,
                body=answer,
                channel=channel,
                project=project,
                idempotency_key=f"demo:{customer.user.username}:answered:{n}",
                at=asked + dt.timedelta(minutes=delay),
                notify=False,
            )
        answered_at = asked + dt.timedelta(minutes=delay)
        actions.mark_read(thread=thread, side=Side.STAFF, at=answered_at)
        actions.mark_read(thread=thread, side=Side.CUSTOMER, at=answered_at)

    # -- Luis Ramirez: phone only (no email), Roof Repair ----------------------------------------

    def _luis(self, business, mike, kim) -> None:
        """A customer with no email, who signs in with a code texted to his phone."""
        # A demo database from before Luis gave his number to Daniel: move Daniel off it.
        Customer.objects.filter(user__username="daniel", phone=LUIS_PHONE).update(
            phone=DANIEL_PHONE
        )
        luis = self._customer(business, "Luis Ramirez", "", LUIS_PHONE, "luis")
        self._assign(luis, kim)
        roof, _ = Project.objects.get_or_create(
            code="PRJ-1044",
            defaults={
                "customer": luis,
                "title": "Roof Repair",
                "status": Project.Status.ACTIVE,
                "plan_type": "Standard Plan",
            },
        )
        thread = actions.ensure_thread(customer=luis)
        if Entry.objects.filter(thread=thread, idempotency_key="demo:luis:1").exists():
            return
        now = timezone.now()
        self._answered_questions(
            thread,
            luis,
            mike,
            roof,
            Entry.Channel.SMS,
            [
                (
                    5,
                    18,
                    5,
                    35,
                    "Hi, this is Luis Ramirez. Water comes in by the chimney when it "
                    "rains. Can you take a look?",
                    "Sorry to hear it, Luis. I'll check the crew's week and text you a time.",
                ),
            ],
        )
        actions.post_staff_message(
            thread=thread,
            author=mike,
            body="Hi Luis, it's Mike. We can come look at the roof leak the day after tomorrow "
            "at 9am. Does that work?",
            channel=Entry.Channel.SMS,
            project=roof,
            idempotency_key="demo:luis:1",
            at=now - dt.timedelta(days=2, hours=5),
            notify=False,
        )
        actions.post_customer_reply(
            customer=luis,
            body="9 works. The leak is over the back bedroom, by the chimney.",
            channel=Entry.Channel.SMS,
            project=roof,
            idempotency_key="demo:luis:2",
            at=now - dt.timedelta(days=2, hours=4),
            notify=False,
        )
        actions.post_automated_message(
            thread=thread,
            body="Reminder: your roof inspection is tomorrow at 9am.",
            project=roof,
            idempotency_key="demo:luis:3",
            at=now - dt.timedelta(days=1, hours=6),
            notify=False,
        )

    # -- today's visits (an announcement to "customers with a visit today" has someone) ---------

    def _visits_today(self) -> None:
        """Luis's roof inspection, which his thread set for today at 9am, and a check of
        Sarah's deck stain at 3pm (she asked whether the cedar needs a second coat)."""
        luis = Customer.objects.get(user__username="luis")
        sarah = Customer.objects.get(user__username="sarah")
        # "Today" on the business's calendar, the one announcements choose visits by.
        tz = zoneinfo.ZoneInfo(luis.business.time_zone)
        today = timezone.localdate(timezone.now(), tz)
        for customer, code, external_id, title, hour in [
            (luis, "PRJ-1044", "APT-83", "Roof inspection", 9),
            (sarah, "PRJ-1042", "APT-84", "Cedar stain check", 15),
        ]:
            if Appointment.objects.filter(external_id=external_id).exists():
                continue
            starts = dt.datetime(today.year, today.month, today.day, hour, tzinfo=tz)
            crm.schedule_appointment(
                customer=customer,
                project=Project.objects.get(code=code),
                title=title,
                starts_at=starts,
                ends_at=starts + dt.timedelta(hours=1),
                external_id=external_id,
                # Booked now: a card's time follows its place at the end of the thread.
                at=timezone.now(),
                notify=False,
            )

    # -- Saved replies: typed as "/name" in the staff reply box ---------------------------------

    SAVED_REPLIES = {
        "Deposit": "Hi {first_name}, the deposit for {project} is {invoice_total}. Once it is "
        "in, we are all set: your next visit is {next_visit}.",
        "Running late": "Hi {first_name}, our crew is running about 20 minutes late today. "
        "Sorry for the wait!",
        "Thanks": "Thanks, {first_name}! Let us know if anything else comes up with {project}.",
        "Visit reminder": "Hi {first_name}, a reminder that your next visit is {next_visit}. "
        "Reply CONFIRM to confirm.",
    }

    def _saved_replies(self) -> None:
        for name, body in self.SAVED_REPLIES.items():
            SavedReply.objects.get_or_create(name=name, defaults={"body": body})
