"""Quiet hours a member sets for themself: pure time arithmetic, no database.

A window runs from ``start`` to ``end`` in the member's own time zone; when ``end`` is
earlier than ``start`` it wraps past midnight (23:00 to 06:00). ``start == end`` is off.
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def valid_timezone(name: str) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone_names() -> list[str]:
    return sorted(available_timezones())


def quiet_until(now: datetime, start: time | None, end: time | None, tz: str) -> datetime | None:
    """When the quiet window containing ``now`` (aware) ends, in the member's zone; None when
    ``now`` is outside it or no window is set."""
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(tz) if valid_timezone(tz) else ZoneInfo("UTC")
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:  # wraps past midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone)


def has_quiet_hours(user) -> bool:
    """Whether the member set a quiet window (their forms then offer the one-post override)."""
    start = getattr(user, "quiet_start", None)
    end = getattr(user, "quiet_end", None)
    return start is not None and end is not None and start != end


def describe_end(until: datetime) -> str:
    """ "06:00" for the member's own clock."""
    return until.strftime("%H:%M")
