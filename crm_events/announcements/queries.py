"""What staff see of announcements: each one's recipients and the state of their deliveries,
read from the Delivery rows of the entries (one grouped query for any number of them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q

from crm_events.announcements.models import Announcement, AnnouncementRecipient
from notifications.models import Delivery

S = Delivery.Status
# Delivery statuses as staff read them here.
BUCKETS = {
    S.SENT: "sent",
    S.DELIVERED: "sent",
    S.HELD: "held",
    S.FAILED: "failed",
    S.SUPPRESSED: "not_sent",
    S.QUEUED: "pending",
    S.SENDING: "pending",
}


@dataclass
class Figures:
    recipients: int = 0
    appended: int = 0
    skipped: int = 0
    deliveries: dict = field(
        default_factory=lambda: dict.fromkeys(["sent", "held", "failed", "not_sent", "pending"], 0)
    )

    @property
    def waiting(self) -> int:
        """Recipients not appended yet (their deliveries are not even planned)."""
        return self.recipients - self.appended - self.skipped


def figures(announcements: list[Announcement]) -> dict[int, Figures]:
    """Figures per announcement id: two queries whatever the number of announcements."""
    result = defaultdict(Figures)
    ids = [a.pk for a in announcements]
    for a in announcements:
        result[a.pk].recipients = a.recipient_count
    done = (
        AnnouncementRecipient.objects.filter(announcement_id__in=ids)
        .values("announcement_id")
        .annotate(
            appended=Count("pk", filter=Q(entry__isnull=False)),
            skipped=Count("pk", filter=~Q(skipped="")),
        )
    )
    for row in done:
        result[row["announcement_id"]].appended = row["appended"]
        result[row["announcement_id"]].skipped = row["skipped"]
    by_status = (
        AnnouncementRecipient.objects.filter(
            announcement_id__in=ids, entry__deliveries__audience=Delivery.Audience.CUSTOMER
        )
        .values("announcement_id", "entry__deliveries__status")
        .annotate(n=Count("entry__deliveries"))
    )
    for row in by_status:
        bucket = BUCKETS[row["entry__deliveries__status"]]
        result[row["announcement_id"]].deliveries[bucket] += row["n"]
    return dict(result)


def recent(limit: int = 100) -> list[Announcement]:
    return list(Announcement.objects.select_related("created_by", "tag")[:limit])
