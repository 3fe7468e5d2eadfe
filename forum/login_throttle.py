"""Brute-force protection for logging in.

Failures are counted per handle *and* client address in the shared cache (Redis when
REDIS_URL is set, so every worker counts together). After KINSHIP_LOGIN_LOCKOUT failures
within its window that pair is refused for KINSHIP_LOGIN_COOLOFF_SECONDS, then may try
again. Keying on the pair means nobody can lock a member out by guessing at their handle:
the member's own address is unaffected. Whether a handle exists never changes the answer.
"""

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from moderation import ratelimit

T = TypeVar("T")
# This process's own counters and locks, used only while the shared cache is unreachable:
# the protection holds per worker meanwhile, and logging in never fails for an outage.
_local = LocMemCache("kinship-login-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})

LOCKED_MESSAGE = (
    "Too many attempts to log in with that handle from here. For your safety, please wait "
    "{wait} and try again, or reset your password."
)


def client_address(request) -> str:
    """The address the request came from (uvicorn's --proxy-headers sets it behind a proxy)."""
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def _keys(handle: str, address: str) -> tuple[str, str]:
    # Handles log in regardless of case; hashing keeps odd input out of cache keys.
    digest = hashlib.sha256(f"{handle.strip().lower()}\0{address}".encode()).hexdigest()[:32]
    return f"login:failures:{digest}", f"login:locked:{digest}"


def _with_counters(operation: Callable[[BaseCache], T]) -> T:
    try:
        return operation(cache)
    except (RedisConnectionError, RedisTimeoutError):
        return operation(_local)


def is_locked(*, handle: str, address: str) -> bool:
    locked_key = _keys(handle, address)[1]
    return _with_counters(lambda c: c.get(locked_key)) is not None or locked_key in _local


def record_failure(*, handle: str, address: str) -> bool:
    """Count a failed attempt; True when it locks the handle for this address."""
    return _with_counters(lambda counters: _count_failure(counters, *_keys(handle, address)))


def _count_failure(counters: BaseCache, failures_key: str, locked_key: str) -> bool:
    allowed, window = settings.KINSHIP_LOGIN_LOCKOUT
    # The window starts at the first failure.
    if ratelimit.count_up(counters, failures_key, timeout=window) < allowed:
        return False
    # The cool-off starts afresh: after it the pair has its full allowance again.
    counters.set(locked_key, 1, timeout=settings.KINSHIP_LOGIN_COOLOFF_SECONDS)
    counters.delete(failures_key)
    return True


def record_success(*, handle: str, address: str) -> None:
    failures_key = _keys(handle, address)[0]
    _with_counters(lambda counters: counters.delete(failures_key))


def locked_message() -> str:
    seconds = settings.KINSHIP_LOGIN_COOLOFF_SECONDS
    if seconds < 60:
        wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = -(-seconds // 60)
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return LOCKED_MESSAGE.format(wait=wait)
