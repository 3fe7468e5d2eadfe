"""Template helpers for Kinship pages."""

import functools
import re
from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def days_count(member) -> str:
    """A recovery date as a gentle day count ("412 days"), never the date itself."""
    days = member.days_in_recovery(timezone.localdate())
    if days is None or days < 0:
        return ""
    if days == 1:
        return "1 day"
    return f"{days:,} days"


@register.filter
def depth_class(post) -> str:
    return f"depth-{min(getattr(post, 'display_depth', 0), 5)}"


@register.filter
def ago(moment, now=None) -> str:
    """ "just now" for the last minute, then "3 hours ago" (the largest two units), as of
    ``now`` (a page filling many at once reads the clock once)."""
    if moment is None:
        return ""
    elapsed = ((now or timezone.now()) - moment).total_seconds()
    if elapsed < 60:
        return "just now"
    return _ago(moment, int(elapsed // 60))


@functools.lru_cache(maxsize=4096)
def _ago(moment, minutes: int) -> str:
    # timesince counts whole minutes at most, and months turn at a whole number of minutes
    # after ``moment``: every instant of this minute reads the same, so a busy page computes
    # each post's text once a minute (timesince costs tens of microseconds).
    return f"{timesince(moment, moment + timedelta(minutes=minutes))} ago"


# forum.fragments fills these in cached posts, so "ago" is as of each page, not of the cache.
AGO_HOLE = re.compile("\x00ago:([^\x00]+)\x00")


@register.filter
def ago_hole(moment) -> str:
    return "" if moment is None else f"\x00ago:{moment.isoformat()}\x00"
