"""Insights for staff (/staff/insights/): how fast the business answers, what goes through
each channel, who is waiting, what failed. Reads only; the definitions are in
docs/insights.md.

Every figure is an SQL aggregate. Response times need window functions, percentile_cont,
generate_series and time zone arithmetic, so they are computed on PostgreSQL only; on
SQLite (`make run` without a database) the page says they are unavailable. The other
sections are ORM queries that run on both.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from messaging.models import Entry, Thread
from notifications.models import Delivery, NotificationPreferences
from portal.models import Business, Customer

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30

# Response-time buckets for the chart: (upper bound in seconds, label).
BUCKETS = (
    (15 * 60, "Under 15 min"),
    (60 * 60, "15 min – 1 h"),
    (4 * 3600, "1 – 4 h"),
    (24 * 3600, "4 – 24 h"),
    (3 * 86400, "1 – 3 days"),
    (None, "Over 3 days"),
)

# Channels a message is counted on, in the order the page shows them.
MESSAGE_CHANNELS = (Entry.Channel.PORTAL, Entry.Channel.SMS, Entry.Channel.EMAIL)
DIRECTIONS = (
    ("in", "In (customers)", Entry.Kind.CUSTOMER_REPLY),
    ("staff", "Out (staff)", Entry.Kind.STAFF_MESSAGE),
    ("automated", "Out (automated)", Entry.Kind.AUTOMATED),
)


class BadPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """The last `days` days up to now, cut at midnight on the business's clock: day one
    starts at local midnight `days - 1` days before today."""

    days: int
    zone: zoneinfo.ZoneInfo
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last(cls, *, days: int, zone: str, now: dt.datetime | None = None) -> Period:
        if days not in PERIODS:
            raise BadPeriod(f"days must be one of {', '.join(map(str, PERIODS))}.")
        tz = zoneinfo.ZoneInfo(zone)
        now = now or timezone.now()
        first_day = now.astimezone(tz).date() - dt.timedelta(days=days - 1)
        start = dt.datetime.combine(first_day, dt.time(0), tzinfo=tz)
        return cls(days=days, zone=tz, start=start, end=now)

    @classmethod
    def from_param(cls, raw: str | None, *, zone: str, now: dt.datetime | None = None) -> Period:
        if raw is None or raw == "":
            return cls.last(days=DEFAULT_PERIOD, zone=zone, now=now)
        if not raw.isdigit():
            raise BadPeriod(f"days must be one of {', '.join(map(str, PERIODS))}.")
        return cls.last(days=int(raw), zone=zone, now=now)

    @property
    def dates(self) -> list[dt.date]:
        first = self.start.date()
        return [first + dt.timedelta(days=n) for n in range(self.days)]


# -- response times ------------------------------------------------------------------------


@dataclass
class ResponseTimes:
    answered: int = 0
    unanswered: int = 0
    median: float | None = None
    p90: float | None = None
    business_median: float | None = None
    business_p90: float | None = None
    buckets: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class StaffResponses:
    answered: int = 0
    median: float | None = None


# Waits and their answers. Only customer replies and staff messages take part: internal notes,
# cards and calls are not messages, and an automated message does not answer anyone. Within a
# thread (by seq) the rows where the kind changes alternate: a wait starts (the first customer
# message after a staff message, or the thread's first), then its answer (the next staff
# message). So the answer of a wait is the next "change" row: LEAD over the changes.
# The thread's last message before the period comes along, so that a customer message early
# in the period that follows an unanswered one is not counted as a new wait.
WAITS_SQL = """
WITH messages AS (
    SELECT e.thread_id, e.seq, e.kind, e.created_at, e.author_id
    FROM messaging_entry e
    WHERE e.kind IN ('customer_reply', 'staff_message') AND e.created_at >= %(start)s
  UNION ALL
    -- Which of the two kinds came last, from two probes of the index (thread, kind, seq)
    -- that hold created_at: no table rows read. Its author is not needed (it is never a
    -- wait of the period, and an answer only counts for the wait before it).
    SELECT t.id, before.seq, before.kind, before.created_at, NULL
    FROM messaging_thread t
    CROSS JOIN LATERAL (
        SELECT * FROM (
            (SELECT e.seq, e.kind, e.created_at FROM messaging_entry e
             WHERE e.thread_id = t.id AND e.kind = 'customer_reply' AND e.created_at < %(start)s
             ORDER BY e.seq DESC LIMIT 1)
            UNION ALL
            (SELECT e.seq, e.kind, e.created_at FROM messaging_entry e
             WHERE e.thread_id = t.id AND e.kind = 'staff_message' AND e.created_at < %(start)s
             ORDER BY e.seq DESC LIMIT 1)
        ) latest
        ORDER BY seq DESC
        LIMIT 1
    ) before
    WHERE t.last_entry_at >= %(start)s
),
turns AS (
    SELECT thread_id, seq, kind, created_at, author_id,
           LAG(kind) OVER (PARTITION BY thread_id ORDER BY seq) AS previous_kind
    FROM messages
),
changes AS (
    SELECT kind, created_at,
           LEAD(created_at) OVER (PARTITION BY thread_id ORDER BY seq) AS answered_at,
           LEAD(author_id) OVER (PARTITION BY thread_id ORDER BY seq) AS answered_by
    FROM turns
    WHERE previous_kind IS DISTINCT FROM kind
),
-- Business hours as a clock that runs only while the business is open: for each local day of
-- the period (to the day after it ends), when it opens, how long it is open (0 on a closed
-- day), and how long it was open on all the days before. Local wall times become instants
-- with AT TIME ZONE, so DST days are right. A wait's business-hours time is then the clock's
-- reading when it was answered minus its reading when it began: two joins on the local
-- date, whatever the wait's length.
business_days AS (
    SELECT day::date AS day,
           (day + %(opens)s::time) AT TIME ZONE %(zone)s AS opens,
           CASE WHEN EXTRACT(ISODOW FROM day)::int = ANY(%(open_days)s)
                THEN EXTRACT(EPOCH FROM ((day + %(closes)s::time) AT TIME ZONE %(zone)s)
                                      - ((day + %(opens)s::time) AT TIME ZONE %(zone)s))
                ELSE 0 END AS open_seconds
    FROM generate_series(
        (%(start)s::timestamptz AT TIME ZONE %(zone)s)::date::timestamp,
        (%(end)s::timestamptz AT TIME ZONE %(zone)s)::date::timestamp + interval '1 day',
        interval '1 day'
    ) AS day
),
business_clock AS (
    SELECT day, opens, open_seconds,
           SUM(open_seconds) OVER (ORDER BY day) - open_seconds AS open_before
    FROM business_days
),
waits AS (
    SELECT created_at AS waited_at, answered_at, answered_by,
           -- NULL while unanswered (GREATEST alone would make that 0: it skips NULLs).
           CASE WHEN answered_at IS NOT NULL
               THEN GREATEST(0, EXTRACT(EPOCH FROM answered_at - created_at)) END AS seconds,
           CASE WHEN answered_at IS NOT NULL THEN GREATEST(0,
               (answered.open_before + LEAST(GREATEST(
                   EXTRACT(EPOCH FROM answered_at - answered.opens), 0), answered.open_seconds))
             - (began.open_before + LEAST(GREATEST(
                   EXTRACT(EPOCH FROM created_at - began.opens), 0), began.open_seconds))
           ) END AS business_seconds
    FROM changes
    JOIN business_clock began ON began.day = (created_at AT TIME ZONE %(zone)s)::date
    LEFT JOIN business_clock answered
        ON answered.day = (answered_at AT TIME ZONE %(zone)s)::date
    WHERE kind = 'customer_reply' AND created_at >= %(start)s AND created_at < %(end)s
)
"""

RESPONSE_SQL = (
    WAITS_SQL
    + """
SELECT GROUPING(answered_by) AS overall_row, answered_by,
       COUNT(answered_at), COUNT(*) - COUNT(answered_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY business_seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY business_seconds),
       {buckets}
FROM waits
GROUP BY GROUPING SETS ((), (answered_by))
"""
)


def _bucket_sql() -> str:
    parts, lower = [], 0
    for upper, _label in BUCKETS:
        condition = f"seconds >= {lower}" + (f" AND seconds < {upper}" if upper else "")
        parts.append(f"COUNT(*) FILTER (WHERE {condition})")
        lower = upper or lower
    return ", ".join(parts)


def response_times_available() -> bool:
    return connection.vendor == "postgresql"


def response_times(
    *, period: Period, business: Business
) -> tuple[ResponseTimes, dict[int, StaffResponses]]:
    """The period's waits (customer messages that started one), overall and per staff member
    who answered. One query."""
    params = {
        "start": period.start,
        "end": period.end,
        "zone": business.time_zone,
        "opens": business.opens_at,
        "closes": business.closes_at,
        "open_days": business.open_weekdays,
    }
    overall, per_staff = ResponseTimes(), {}
    with connection.cursor() as cursor:
        cursor.execute(RESPONSE_SQL.format(buckets=_bucket_sql()), params)
        rows = cursor.fetchall()
    for overall_row, author_id, answered, unanswered, p50, p90, b50, b90, *counts in rows:
        if overall_row:
            overall = ResponseTimes(
                answered=answered,
                unanswered=unanswered,
                median=p50,
                p90=p90,
                business_median=b50,
                business_p90=b90,
                buckets=[(label, n) for (_, label), n in zip(BUCKETS, counts, strict=True)],
            )
        elif author_id is not None:
            per_staff[author_id] = StaffResponses(answered=answered, median=p50)
    if overall.answered == 0 and overall.unanswered == 0:
        overall.buckets = [(label, 0) for _, label in BUCKETS]
    return overall, per_staff


# -- messages by channel and day ----------------------------------------------------------


@dataclass
class Volume:
    # day -> direction -> channel -> count
    by_day: dict[dt.date, dict[str, Counter]]
    totals: dict[str, Counter]

    def day_total(self, day: dt.date, direction: str) -> int:
        return sum(self.by_day[day][direction].values())


def message_volume(*, period: Period) -> Volume:
    rows = (
        Entry.objects.filter(
            kind__in=[kind for _, _, kind in DIRECTIONS],
            created_at__gte=period.start,
            created_at__lt=period.end,
        )
        .annotate(day=TruncDate("created_at", tzinfo=period.zone))
        .values_list("day", "kind", "channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    direction_of = {kind: name for name, _, kind in DIRECTIONS}
    by_day = {day: {name: Counter() for name, _, _ in DIRECTIONS} for day in period.dates}
    totals = {name: Counter() for name, _, _ in DIRECTIONS}
    for day, kind, channel, n in rows:
        if day not in by_day:  # an entry dated in the future of the business's clock
            continue
        by_day[day][direction_of[kind]][channel] += n
        totals[direction_of[kind]][channel] += n
    return Volume(by_day=by_day, totals=totals)


# -- customers waiting now -------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    thread_id: int
    customer_name: str
    assigned_to_id: int | None
    since: dt.datetime


def waiting_now() -> list[Waiting]:
    """Threads whose customer wrote after the last staff message (automated messages and
    notes do not answer), oldest wait first; the wait began at the first such message."""
    last_staff_seq = Entry.objects.filter(
        thread=OuterRef("pk"), kind=Entry.Kind.STAFF_MESSAGE
    ).order_by("-seq")
    first_unanswered = Entry.objects.filter(
        thread=OuterRef("pk"), kind=Entry.Kind.CUSTOMER_REPLY, seq__gt=OuterRef("answered_seq")
    ).order_by("seq")
    rows = (
        # A thread whose last message is the staff's waits for no one; read off the thread.
        Thread.objects.exclude(last_message_kind__in=["", Entry.Kind.STAFF_MESSAGE])
        # Each a single probe of the index (thread, kind, seq).
        .annotate(
            answered_seq=Coalesce(
                Subquery(last_staff_seq.values("seq")[:1]), Value(0), output_field=IntegerField()
            )
        )
        .annotate(since=Subquery(first_unanswered.values("created_at")[:1]))
        .values_list("pk", "customer__name", "customer__assigned_to_id", "since")
    )
    # Filtered and sorted here, not in SQL: Django would repeat the subqueries in WHERE and
    # ORDER BY. The rows are threads (at most one per customer), never entries.
    waiting = [Waiting(*row) for row in rows if row[3] is not None]
    return sorted(waiting, key=lambda w: (w.since, w.thread_id))


# -- delivery failures and opt-outs -----------------------------------------------------------


TWILIO_CODE = re.compile(r"\bTwilio (\d{5})\b")
EMAIL_EVENT = re.compile(r"^Email (bounced|rejected|failed|complained|unsubscribed)\b")


def failure_reason(last_error: str) -> str:
    """A failure's reason without the parts that differ per message (addresses, attempts,
    provider text): the Twilio error code, the email event, or the error's first words."""
    if match := TWILIO_CODE.search(last_error):
        return f"Twilio error {match.group(1)}"
    if match := EMAIL_EVENT.search(last_error):
        return f"Email {match.group(1)}"
    if last_error.startswith("No worker finished sending it"):
        return "Not sent by any worker"
    head = last_error.split(":", 1)[0].split(" (", 1)[0].strip()
    return head[:60] or "No reason recorded"


@dataclass(frozen=True)
class Failure:
    channel: str
    reason: str
    count: int


def delivery_failures(*, period: Period) -> list[Failure]:
    # Grouped by the stored text in SQL; the distinct texts are few, and are then merged by
    # their normalised reason here.
    rows = (
        Delivery.objects.filter(
            status=Delivery.Status.FAILED, failed_at__gte=period.start, failed_at__lt=period.end
        )
        .values_list("channel", "last_error")
        .annotate(n=Count("id"))
        .order_by()
    )
    merged: Counter = Counter()
    for channel, last_error, n in rows:
        merged[(channel, failure_reason(last_error))] += n
    labels = dict(Delivery.Channel.choices)
    return [
        Failure(channel=labels.get(channel, channel), reason=reason, count=n)
        for (channel, reason), n in sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    ]


@dataclass(frozen=True)
class OptOuts:
    sms_stopped: int
    email_bounced: int
    email_turned_off: int


def opt_outs(*, period: Period) -> OptOuts:
    """Texts stopped and emails bouncing since the period began (and still so: START or a
    delivered email clears the mark). Email turned off carries no date: counted as it is now."""
    counts = NotificationPreferences.objects.aggregate(
        sms=Count("pk", filter=Q(sms_opted_out_at__gte=period.start)),
        bounced=Count("pk", filter=Q(email_bounced_at__gte=period.start)),
        off=Count("pk", filter=Q(email_enabled=False)),
    )
    return OptOuts(
        sms_stopped=counts["sms"], email_bounced=counts["bounced"], email_turned_off=counts["off"]
    )


# -- per staff member ---------------------------------------------------------------------------


@dataclass
class StaffRow:
    user_id: int
    name: str
    sent: int = 0
    answered: int = 0
    median: float | None = None
    assigned: int = 0
    waiting: int = 0


def per_staff(
    *, period: Period, responses: dict[int, StaffResponses], waiting: list[Waiting]
) -> list[StaffRow]:
    sent = dict(
        Entry.objects.filter(
            kind=Entry.Kind.STAFF_MESSAGE,
            author__isnull=False,
            created_at__gte=period.start,
            created_at__lt=period.end,
        )
        .values_list("author_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    assigned = dict(
        Customer.objects.filter(assigned_to__isnull=False)
        .values_list("assigned_to_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    waiting_on = Counter(w.assigned_to_id for w in waiting if w.assigned_to_id)
    ids = set(sent) | set(responses) | set(assigned)
    users = (
        get_user_model()
        .objects.filter(Q(is_staff=True, is_active=True) | Q(pk__in=ids))
        .order_by("first_name", "username")
    )
    rows = []
    for user in users:
        answers = responses.get(user.pk, StaffResponses())
        rows.append(
            StaffRow(
                user_id=user.pk,
                name=user.get_full_name() or user.username,
                sent=sent.get(user.pk, 0),
                answered=answers.answered,
                median=answers.median,
                assigned=assigned.get(user.pk, 0),
                waiting=waiting_on.get(user.pk, 0),
            )
        )
    return rows


# -- the page -----------------------------------------------------------------------------------


@dataclass
class Insights:
    period: Period
    business: Business | None
    responses: ResponseTimes | None
    volume: Volume
    waiting: list[Waiting]
    failures: list[Failure]
    opt_outs: OptOuts
    staff: list[StaffRow]


def insights(*, period: Period, business: Business | None) -> Insights:
    responses, staff_responses = None, {}
    if business is not None and response_times_available():
        responses, staff_responses = response_times(period=period, business=business)
    waiting = waiting_now()
    return Insights(
        period=period,
        business=business,
        responses=responses,
        volume=message_volume(period=period),
        waiting=waiting,
        failures=delivery_failures(period=period),
        opt_outs=opt_outs(period=period),
        staff=per_staff(period=period, responses=staff_responses, waiting=waiting),
    )
