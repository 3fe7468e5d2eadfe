"""Per-member rate limits on the shared cache.

With REDIS_URL set the cache is Redis, so every worker process counts against
the same fixed-window counters; without it the local-memory cache is right only
for the single-process development server.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .models import SharedVersion

# Slow mode its moderators set on a place (forum.publishing._check_place_slow_mode).
PLACE_SLOW_MODE = {"thread_slow_mode": "This thread", "room_slow_mode": "This room"}
# This process's own counters, used only while the shared cache is unreachable.
_local = LocMemCache("kinship-ratelimit-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})


@dataclass
class RateLimited(Exception):
    """Raised when a limit is reached; ``retry_after`` is in whole seconds."""

    action: str
    retry_after: int

    def __str__(self) -> str:
        if self.action == "slow_mode":
            return (
                "A moderator has put you in slow mode in this group. "
                f"You can post again in {self.message_wait}."
            )
        if self.action in PLACE_SLOW_MODE:
            return (
                f"{PLACE_SLOW_MODE[self.action]} is in slow mode. "
                f"You can write here again in {self.message_wait}."
            )
        return f"That is faster than Kinship allows. Please wait {self.message_wait}."

    @property
    def message_wait(self) -> str:
        if self.retry_after < 60:
            return f"{self.retry_after} second{'s' if self.retry_after != 1 else ''}"
        minutes = -(-self.retry_after // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"


def limit_for(action: str, level: int | None = None) -> tuple[int, int]:
    """(count, seconds) for ``action``; a member's trust level may have its own variant
    ("chat.0" for new members), otherwise the plain limit applies.

    Earning trust never lowers an allowance: a level gets the most generous of its own and
    every lower level's (an operator who raises the plain limit, KINSHIP_CHAT_RATE_LIMIT,
    raises it for trusted members too, whose variant was written against the default)."""
    limits = settings.KINSHIP_RATE_LIMITS
    if level is None:
        return limits[action]
    allowances = [limits.get(f"{action}.{each}", limits[action]) for each in range(level + 1)]
    return max(allowances, key=lambda allowance: allowance[0] / allowance[1])


def hit(action: str, *, key: str, now: float | None = None, level: int | None = None) -> None:
    """Count one ``action`` by ``key``; raise RateLimited if it is over the limit.

    The counter is the action's, whatever the level: a member who earns a level in the
    middle of a window keeps what they have used, against the new allowance."""
    count_allowed, window = limit_for(action, level)
    now = time.time() if now is None else now
    window_start = int(now // window) * window
    cache_key = f"rl:{action}:{key}:{window_start}"
    tokens = SharedVersion.unread_keys()
    try:
        if tokens and hasattr(cache, "tally_and_read"):
            # The write's policy tokens come with its count: one round trip, not two.
            count, found = cache.tally_and_read(cache_key, window + 1, tokens)
            SharedVersion.arrived(found)
        else:
            count = count_up(cache, cache_key, timeout=window + 1)
    except (RedisConnectionError, RedisTimeoutError):
        # Redis is unreachable: limits still hold, counted by this worker process alone
        # until it answers again (never a refused page for a cache outage).
        count = count_up(_local, cache_key, timeout=window + 1)
    if count > count_allowed:
        raise RateLimited(action=action, retry_after=max(1, int(window_start + window - now)))


def count_up(counters: BaseCache, cache_key: str, *, timeout: int) -> int:
    """One more at ``cache_key``, a counter that lives ``timeout`` seconds from its first
    count; the new count. Also forum.login_throttle's."""
    tally = getattr(counters, "tally", None)  # Redis (forum.cache): one round trip
    if tally is not None:
        return tally(cache_key, timeout)
    # add() is a no-op if the counter exists; incr() is atomic.
    counters.add(cache_key, 0, timeout=timeout)
    try:
        return counters.incr(cache_key)
    except ValueError:  # evicted between add() and incr()
        counters.set(cache_key, 1, timeout=timeout)
        return 1
