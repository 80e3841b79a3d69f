"""Reads for the portal: the staff project list; the customer an address signs in as."""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from messaging.models import MESSAGE_KINDS, Entry
from portal.mentions import staff_name
from portal.models import Customer, Project

_MESSAGE_KINDS = MESSAGE_KINDS


def staff_project_rows() -> QuerySet[Project]:
    """Every project with its customer, thread, unread count and last message, in one query:
    projects with unread messages first, then by latest activity — the order of the thread
    index `thread_staff_list_order`, so a page is read off it rather than sorting them all —
    then by customer, so a customer's projects (one thread, the same two keys) sit together.

    The last message is the thread's, whichever project it was about, and says which one:
    a customer's rows all show the one conversation, never a per-project guess at it."""
    last_message = Entry.objects.filter(
        thread=OuterRef("customer__thread"), kind__in=_MESSAGE_KINDS
    ).order_by("-seq")
    return (
        Project.objects.select_related("customer", "customer__thread")
        .annotate(
            unread=F("customer__thread__staff_inbound") - F("customer__thread__staff_read"),
            has_unread=F("customer__thread__staff_has_unread"),
            thread_last_entry_at=F("customer__thread__last_entry_at"),
            last_message_body=Subquery(last_message.values("body")[:1]),
            last_message_at=Subquery(last_message.values("created_at")[:1]),
            last_message_project=Subquery(last_message.values("project__title")[:1]),
        )
        .order_by(
            F("customer__thread__staff_has_unread").desc(),
            F("customer__thread__last_entry_at").desc(nulls_last=True),
            "customer_id",
            "code",
        )
    )


class StaffChoices(list):
    """(id, name) pairs, with `ids` for templates to tell a former staff member."""

    @property
    def ids(self) -> set[int]:
        return {pk for pk, _ in self}


def assignable_staff() -> StaffChoices:
    """(id, name) of every active staff member, the choices of an assignee control: one
    query for a whole list of rows, by name."""
    users = get_user_model().objects.filter(is_active=True, is_staff=True)
    return StaffChoices(
        sorted(
            ((u.pk, staff_name(u)) for u in users.only("pk", "first_name", "username")),
            key=lambda choice: (choice[1].lower(), choice[0]),
        )
    )


# -- finding customers: ?q= and the filters ------------------------------------------------

# What a search reads of its text: enough for any name, address or code, little enough that
# a pasted essay costs what a word does.
MAX_QUERY_CHARS = 100
MAX_TERMS = 5
_PHONE_CHARS = frozenset("0123456789+-(). ")


def search_terms(raw: str) -> list[str]:
    """The words of a search box's text, each to be found somewhere in a customer's record.
    Control characters go (PostgreSQL refuses NUL in a parameter; the rest match nothing), so
    does anything past MAX_QUERY_CHARS and MAX_TERMS words. A phone typed with spaces,
    "(555) 555 0123", stays one term: its digits are what is compared."""
    text = "".join(ch if ch.isprintable() else " " for ch in raw[: MAX_QUERY_CHARS * 4])
    text = " ".join(text.split())[:MAX_QUERY_CHARS]
    if not text:
        return []
    if set(text) <= _PHONE_CHARS and sum(ch.isdigit() for ch in text) >= 3:
        return [text]
    return text.split(" ")[:MAX_TERMS]


def _customers_matching(term: str) -> QuerySet:
    """Ids of customers one term finds: in name, email, address or phone, or the code or title
    of one of their projects. Each branch is answered by its trigram index on PostgreSQL
    (migration portal 0002); the union keeps them separate, so no branch turns into a scan."""
    found = Q(name__icontains=term) | Q(email__icontains=term) | Q(address__icontains=term)
    digits = "".join(ch for ch in term if ch.isdigit())
    if len(digits) >= 3 and set(term) <= _PHONE_CHARS:
        # Stored as E.164 (+15555550123): any way of writing it contains its digits.
        found |= Q(phone__contains=digits)
    by_customer = Customer.objects.filter(found).order_by().values("pk")
    by_project = (
        Project.objects.filter(Q(code__icontains=term) | Q(title__icontains=term))
        .order_by()
        .values("customer_id")
    )
    return by_customer.union(by_project)


class Show:
    """The filters of the staff list, each a set of customers; "all" is no filter."""

    ALL = "all"
    UNREAD = "unread"
    NEEDS_REPLY = "needs_reply"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    OPTED_OUT = "opted_out"
    LABELS = {
        ALL: "All",
        UNREAD: "Unread",
        NEEDS_REPLY: "Needs reply",
        MINE: "Mine",
        UNASSIGNED: "Unassigned",
        OPTED_OUT: "Opted out of SMS",
    }


def _show_condition(show: str, *, viewer, prefix: str = "") -> Q:
    """The customers `show` keeps, as a condition on Customer (prefix "customer__" from a
    Project)."""
    if show == Show.UNREAD:
        return Q(**{f"{prefix}thread__staff_has_unread": 1})
    if show == Show.NEEDS_REPLY:
        # The thread's last message (not a note, card or call) is the customer's: nothing
        # from the business or its automations has answered it yet.
        return Q(**{f"{prefix}thread__last_message_kind": Entry.Kind.CUSTOMER_REPLY})
    if show == Show.MINE:
        return Q(**{f"{prefix}assigned_to": viewer.pk})
    if show == Show.UNASSIGNED:
        return Q(**{f"{prefix}assigned_to__isnull": True})
    if show == Show.OPTED_OUT:
        return Q(**{f"{prefix}notification_preferences__sms_opted_out_at__isnull": False})
    return Q()


@dataclass(frozen=True)
class StaffListQuery:
    """What the staff list is asked for, read from its URL: ?q=, ?show=, ?status=. Anything
    unknown reads as no filter, so a stale or hand-edited link still lists something."""

    q: str = ""
    show: str = Show.ALL
    status: str = ""

    @classmethod
    def from_params(cls, params) -> StaffListQuery:
        q = " ".join(search_terms(params.get("q", "")))
        show = params.get("show", "")
        status = params.get("status", "")
        return cls(
            q=q,
            show=show if show in Show.LABELS else Show.ALL,
            status=status if status in Project.Status.values else "",
        )

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.show != Show.ALL or self.status)

    def params(self, **changes: str) -> dict[str, str]:
        """This query's URL parameters with `changes`, defaults left out."""
        values = {"q": self.q, "show": self.show, "status": self.status, **changes}
        if values["show"] == Show.ALL:
            values["show"] = ""
        return {k: v for k, v in values.items() if v}

    def _searched(self, *, prefix: str) -> Q:
        condition = Q()
        column = f"{prefix}pk" if prefix else "pk"
        for term in search_terms(self.q):
            condition &= Q(**{f"{column}__in": _customers_matching(term)})
        return condition

    def rows(self, *, viewer) -> QuerySet[Project]:
        """The staff list's rows that the search and the filters keep: every project of each
        customer kept (status: one of their projects has it), so they show together."""
        rows = staff_project_rows().filter(self._searched(prefix="customer__"))
        rows = rows.filter(_show_condition(self.show, viewer=viewer, prefix="customer__"))
        if self.status:
            rows = rows.filter(
                customer__in=Project.objects.filter(status=self.status).values("customer_id")
            )
        return rows

    def counts(self, *, viewer) -> dict[str, int]:
        """How many customers each filter (and each project status) keeps with this search,
        whatever filter is chosen now: two queries, one per table. The statuses are grouped
        over projects in one pass: as an EXISTS per status per customer they took 12 times
        as long at 10,000 customers (docs/performance.md)."""
        searched = self._searched(prefix="")
        counts = Customer.objects.filter(searched).aggregate(
            **{
                show: Count("pk", filter=_show_condition(show, viewer=viewer) or None)
                for show in Show.LABELS
            }
        )
        by_status = dict(
            Project.objects.filter(self._searched(prefix="customer__"))
            .order_by()
            .values_list("status")
            .annotate(customers=Count("customer", distinct=True))
        )
        for status in Project.Status.values:
            counts[f"status:{status}"] = by_status.get(status, 0)
        return counts


STAFF_PAGE_SIZE = 50


@dataclass(frozen=True)
class RowCursor:
    """Where a page of the staff list ended, in its sort order: unread first, then latest
    activity (threads with none last), then customer, then project code."""

    has_unread: int
    last_entry_at: dt.datetime | None
    customer_id: int
    code: str

    @classmethod
    def after(cls, row: Project) -> RowCursor:
        # From the row's annotations: a customer may have no thread yet.
        return cls(row.has_unread or 0, row.thread_last_entry_at, row.customer_id, row.code)

    def encode(self) -> str:
        stamp = f"{self.last_entry_at.timestamp():.6f}" if self.last_entry_at else ""
        return f"{self.has_unread}~{stamp}~{self.customer_id}~{self.code}"

    @classmethod
    def decode(cls, raw: str) -> RowCursor:
        """Parse `encode`'s output; ValueError for anything else."""
        try:
            unread, stamp, customer, code = raw.split("~", 3)
            when = dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC) if stamp else None
        except (ValueError, OverflowError, OSError) as exc:
            raise ValueError(raw) from exc
        # A code is printable text (NUL and control characters are not, and PostgreSQL
        # refuses NUL in a query parameter).
        if unread not in ("0", "1") or not code or len(code) > 20 or not code.isprintable():
            raise ValueError(raw)
        if not customer.isascii() or not customer.isdigit() or len(customer) > 18:
            raise ValueError(raw)
        return cls(int(unread), when, int(customer), code)

    def rows_after(self) -> Q:
        last = "customer__thread__last_entry_at"
        same_unread = Q(has_unread=self.has_unread)
        same_customer_later = Q(customer_id__gt=self.customer_id) | Q(
            customer_id=self.customer_id, code__gt=self.code
        )
        if self.last_entry_at is None:
            later = Q(**{f"{last}__isnull": True}) & same_customer_later
        else:
            later = (
                Q(**{f"{last}__lt": self.last_entry_at})
                | Q(**{f"{last}__isnull": True})
                | (Q(**{last: self.last_entry_at}) & same_customer_later)
            )
        return Q(has_unread__lt=self.has_unread) | (same_unread & later)


def staff_project_page(
    *,
    after: RowCursor | None = None,
    limit: int = STAFF_PAGE_SIZE,
    query: StaffListQuery | None = None,
    viewer=None,
) -> tuple[list[Project], RowCursor | None]:
    """One page of the staff list (keyset, never OFFSET) and the cursor for the next, if any,
    searched and filtered by `query`. One query, whatever the number of projects."""
    rows = (query or StaffListQuery()).rows(viewer=viewer)
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
