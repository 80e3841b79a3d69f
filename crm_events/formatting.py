"""How CRM records read: money in the business's format, appointment times as people say
them ("Thu May 15, 8–9am"). Pure functions."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency, list_currencies

DEFAULT_LOCALE = "en_US"


def format_money(amount: Decimal, currency: str = "USD", locale: str = DEFAULT_LOCALE) -> str:
    """ "$4,200" for whole amounts, "$4,200.50" otherwise, in the locale's own pattern
    ("4.200 €" in de_DE)."""
    amount = Decimal(amount)
    try:
        loc = Locale.parse(locale or DEFAULT_LOCALE)
    except (ValueError, TypeError):
        loc = Locale.parse(DEFAULT_LOCALE)
    pattern = loc.currency_formats["standard"].pattern.split(";")[0]
    if amount == amount.to_integral_value():
        whole = pattern.replace(".00", "")
        return format_currency(amount, currency, format=whole, locale=loc, currency_digits=False)
    return format_currency(amount, currency, locale=loc)


def valid_currency(code: str) -> bool:
    return code in list_currencies()


def _hour(value: dt.datetime, *, with_meridiem: bool) -> str:
    hour = value.strftime("%I").lstrip("0")
    text = hour if value.minute == 0 else f"{hour}:{value:%M}"
    return text + (value.strftime("%p").lower() if with_meridiem else "")


def day(value: dt.datetime | dt.date) -> str:
    """Thu May 15"""
    return f"{value:%a %b} {value.day}"


def time_range(starts_at: dt.datetime, ends_at: dt.datetime, zone: str) -> str:
    """'Thu May 15, 8–9am', 'Thu May 15, 11am–1pm', 'Thu May 15, 8am – Fri May 16, 5pm'."""
    tz = zoneinfo.ZoneInfo(zone)
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    if start.date() != end.date():
        return f"{day(start)}, {_hour(start, with_meridiem=True)} – {day(end)}, " + _hour(
            end, with_meridiem=True
        )
    same_half = start.strftime("%p") == end.strftime("%p")
    return f"{day(start)}, {_hour(start, with_meridiem=not same_half)}–" + _hour(
        end, with_meridiem=True
    )
