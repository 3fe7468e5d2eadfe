"""The Redis cache, degraded rather than broken while Redis is unreachable.

Pages read the cache for sessions, hints and compiled watch lists, all of which the
database can answer: while Redis is down a read is a miss and a write that only fills the
cache is skipped, so those pages keep working (and each worker logs the outage). What
must not silently fail still raises: ``delete`` (a logout must not leave a cached
session behind), ``incr`` (rate limits count elsewhere meanwhile, moderation.ratelimit)
and ``get_many`` (open sockets then re-check their authority against the database,
forum.realtime.authority_epochs).
"""

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_client import SharedClientRedisCache

logger = logging.getLogger(__name__)

# What an unreachable Redis raises, through the cache or the channel layer.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
LOG_EVERY_SECONDS = 10.0


class ResilientRedisCache(SharedClientRedisCache):
    _last_logged = 0.0

    def _degraded(self, operation: str, error: Exception) -> None:
        # One warning per worker every LOG_EVERY_SECONDS, not one per request.
        now = time.monotonic()
        if now - ResilientRedisCache._last_logged >= LOG_EVERY_SECONDS:
            ResilientRedisCache._last_logged = now
            logger.warning(
                "cache unavailable (%s: %s); pages fall back to the database", operation, error
            )

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except UNAVAILABLE as error:
            self._degraded("get", error)
            return default

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except UNAVAILABLE as error:
            self._degraded("has_key", error)
            return False

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().add(key, value, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("add", error)
            return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            super().set(key, value, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("set", error)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("set_many", error)
            return list(data)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().touch(key, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("touch", error)
            return False

    def ping(self) -> None:
        """Raise unless Redis answers (for /healthz)."""
        self._cache.get_client(write=True).ping()
