"""Reads for the portal: the staff project list; the customer an address signs in as."""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

from django.db.models import (
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from messaging.models import Entry
from portal.models import Customer, Project

_MESSAGE_KINDS = (Entry.Kind.STAFF_MESSAGE, Entry.Kind.AUTOMATED, Entry.Kind.CUSTOMER_REPLY)


def staff_project_rows() -> QuerySet[Project]:
    """Every project with its customer, thread, unread count and last message, in one query:
    projects with unread messages first, then by latest activity — the order of the thread
    index `thread_staff_list_order`, so a page is read off it rather than sorting them all."""
    last_message = Entry.objects.filter(
        thread=OuterRef("customer__thread"), kind__in=_MESSAGE_KINDS
    ).order_by("-seq")
    return (
        Project.objects.select_related("customer", "customer__thread")
        .annotate(
            unread=F("customer__thread__staff_inbound") - F("customer__thread__staff_read"),
            has_unread=F("customer__thread__staff_has_unread"),
            last_message_body=Subquery(last_message.values("body")[:1]),
            last_message_at=Subquery(last_message.values("created_at")[:1]),
        )
        .order_by(
            F("customer__thread__staff_has_unread").desc(),
            F("customer__thread__last_entry_at").desc(nulls_last=True),
            "code",
        )
    )


STAFF_PAGE_SIZE = 50


@dataclass(frozen=True)
class RowCursor:
    """Where a page of the staff list ended, in its sort order: unread first, then latest
    activity (threads with none last), then project code."""

    has_unread: int
    last_entry_at: dt.datetime | None
    code: str

    @classmethod
    def after(cls, row: Project) -> RowCursor:
        return cls(row.has_unread, row.customer.thread.last_entry_at, row.code)

    def encode(self) -> str:
        stamp = f"{self.last_entry_at.timestamp():.6f}" if self.last_entry_at else ""
        return f"{self.has_unread}~{stamp}~{self.code}"

    @classmethod
    def decode(cls, raw: str) -> RowCursor:
        """Parse `encode`'s output; ValueError for anything else."""
        try:
            unread, stamp, code = raw.split("~", 2)
            when = dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC) if stamp else None
        except (ValueError, OverflowError, OSError) as exc:
            raise ValueError(raw) from exc
        # A code is printable text (NUL and control characters are not, and PostgreSQL
        # refuses NUL in a query parameter).
        if unread not in ("0", "1") or not code or len(code) > 20 or not code.isprintable():
            raise ValueError(raw)
        return cls(int(unread), when, code)

    def rows_after(self) -> Q:
        last = "customer__thread__last_entry_at"
        same_unread = Q(has_unread=self.has_unread)
        if self.last_entry_at is None:
            later = Q(**{f"{last}__isnull": True}, code__gt=self.code)
        else:
            later = (
                Q(**{f"{last}__lt": self.last_entry_at})
                | Q(**{f"{last}__isnull": True})
                | Q(**{last: self.last_entry_at}, code__gt=self.code)
            )
        return Q(has_unread__lt=self.has_unread) | (same_unread & later)


def staff_project_page(
    *, after: RowCursor | None = None, limit: int = STAFF_PAGE_SIZE
) -> tuple[list[Project], RowCursor | None]:
    """One page of the staff list (keyset, never OFFSET) and the cursor for the next, if any.
    One query, whatever the number of projects."""
    rows = staff_project_rows()
    if after is not None:
        rows = rows.filter(after.rows_after())
    page = list(rows[: limit + 1])
    if len(page) > limit:
        return page[:limit], RowCursor.after(page[limit - 1])
    return page, None


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def login_address(email: str) -> str:
    """An address as sign-in compares it, and as its rate limit counts it: trimmed, ASCII
    letters lower-cased, nothing else folded. Python's casefold and PostgreSQL's UPPER fold
    more, and not alike (UPPER turns the dotless "ı" of "danıel@" into the I of DANIEL, which
    casefold leaves alone), so a lookup by either let one inbox be reached under many
    spellings, each with a counter of its own. An address that differs in anything but
    ASCII case is another address."""
    return email.strip().translate(_ASCII_LOWER)


def customer_for_login(*, email: str) -> Customer | None:
    """The active customer who signs in with `email`, compared by login_address alone."""
    address = login_address(email)
    # iexact only narrows the search: on PostgreSQL (UPPER) and SQLite (LIKE) alike it
    # matches at least every ASCII-case variant; the decision is made here, in Python.
    candidates = Customer.objects.select_related("business", "user").filter(
        email__iexact=address, user__is_active=True
    )[:20]
    return next((c for c in candidates if login_address(c.email) == address), None)
