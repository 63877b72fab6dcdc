"""SOQL relative date literals (``THIS_QUARTER``, ``LAST_N_DAYS:30`` …) as inclusive date ranges.

Key results are measured over quarters, so the emulator must resolve these exactly as
Salesforce does, relative to the sandbox org's ``as_of`` day (calendar fiscal year, weeks
starting on Sunday as in the en_US locale, the user's time zone = GMT).
"""

from __future__ import annotations

from datetime import date, timedelta

# literal -> needs ":n"
LITERALS: dict[str, bool] = {
    **dict.fromkeys(
        (
            "YESTERDAY",
            "TODAY",
            "TOMORROW",
            "LAST_WEEK",
            "THIS_WEEK",
            "NEXT_WEEK",
            "LAST_MONTH",
            "THIS_MONTH",
            "NEXT_MONTH",
            "LAST_90_DAYS",
            "NEXT_90_DAYS",
            "THIS_QUARTER",
            "LAST_QUARTER",
            "NEXT_QUARTER",
            "THIS_YEAR",
            "LAST_YEAR",
            "NEXT_YEAR",
        ),
        False,
    ),
    **dict.fromkeys(
        (
            "LAST_N_DAYS",
            "NEXT_N_DAYS",
            "N_DAYS_AGO",
            "LAST_N_WEEKS",
            "NEXT_N_WEEKS",
            "LAST_N_MONTHS",
            "NEXT_N_MONTHS",
            "LAST_N_QUARTERS",
            "NEXT_N_QUARTERS",
            "LAST_N_YEARS",
            "NEXT_N_YEARS",
        ),
        True,
    ),
}


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(day: date, months: int) -> date:
    """First-of-month arithmetic (callers only pass first days)."""
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def _week_start(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)  # Sunday


def date_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """Inclusive ``(first, last)`` days a relative literal covers."""
    d = timedelta(days=1)
    month = date(today.year, today.month, 1)
    quarter = quarter_start(today)
    year = date(today.year, 1, 1)
    week = _week_start(today)

    def span(start: date, months: int) -> tuple[date, date]:
        return start, add_months(start, months) - d

    k = n or 0
    ranges: dict[str, tuple[date, date]] = {
        "YESTERDAY": (today - d, today - d),
        "TODAY": (today, today),
        "TOMORROW": (today + d, today + d),
        "LAST_WEEK": (week - 7 * d, week - d),
        "THIS_WEEK": (week, week + 6 * d),
        "NEXT_WEEK": (week + 7 * d, week + 13 * d),
        "LAST_MONTH": span(add_months(month, -1), 1),
        "THIS_MONTH": span(month, 1),
        "NEXT_MONTH": span(add_months(month, 1), 1),
        "LAST_90_DAYS": (today - 90 * d, today),
        "NEXT_90_DAYS": (today + d, today + 90 * d),
        "LAST_QUARTER": span(add_months(quarter, -3), 3),
        "THIS_QUARTER": span(quarter, 3),
        "NEXT_QUARTER": span(add_months(quarter, 3), 3),
        "LAST_YEAR": span(add_months(year, -12), 12),
        "THIS_YEAR": span(year, 12),
        "NEXT_YEAR": span(add_months(year, 12), 12),
        # LAST_N_DAYS:n covers today and the n days before it; NEXT_N_DAYS:n starts tomorrow.
        "LAST_N_DAYS": (today - k * d, today),
        "NEXT_N_DAYS": (today + d, today + k * d),
        "N_DAYS_AGO": (today - k * d, today - k * d),
        "LAST_N_WEEKS": (week - 7 * k * d, week - d),
        "NEXT_N_WEEKS": (week + 7 * d, week + (7 * k + 6) * d),
        # the LAST_N_ periods end with the previous whole period, the NEXT_N_ ones start with the next
        "LAST_N_MONTHS": (add_months(month, -k), month - d),
        "NEXT_N_MONTHS": (add_months(month, 1), add_months(month, k + 1) - d),
        "LAST_N_QUARTERS": (add_months(quarter, -3 * k), quarter - d),
        "NEXT_N_QUARTERS": (add_months(quarter, 3), add_months(quarter, 3 * k + 3) - d),
        "LAST_N_YEARS": (add_months(year, -12 * k), year - d),
        "NEXT_N_YEARS": (add_months(year, 12), add_months(year, 12 * k + 12) - d),
    }
    return ranges[name]
