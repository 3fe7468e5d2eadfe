"""The Redis cache, degraded rather than broken while Redis is unreachable.

Pages read the cache for sessions, hints and compiled watch lists, all of which the
database can answer: while Redis is down a read is a miss and a write that only fills the
cache is skipped, so those pages keep working (and each worker logs the outage). What
must not silently fail still raises: ``delete`` (a logout must not leave a cached
session behind), ``incr`` and ``tally`` (rate limits count elsewhere meanwhile,
moderation.ratelimit)
and ``get_many`` (open sockets then re-check their authority against the database,
forum.realtime.authority_epochs).

A page that knows which keys it will read can read them in one round trip first
(``read_ahead``): a member's thread page reads its session and the thread's versions
together, where each was a round trip of its own.
"""

import logging
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import cache
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_client import SharedClientRedisCache

logger = logging.getLogger(__name__)

# What an unreachable Redis raises, through the cache or the channel layer.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
LOG_EVERY_SECONDS = 10.0
# What read_ahead read, for the block it wraps: key -> value (keys Redis lacked are absent).
_read_ahead: ContextVar[dict | None] = ContextVar("read_ahead", default=None)
# The keys it asked for, where the cache answered (found any of them).
_asked_ahead: ContextVar[frozenset] = ContextVar("asked_ahead", default=frozenset())


@contextmanager
def read_ahead(keys: list[str]) -> Iterator[None]:
    """Read ``keys`` from the cache now, in one round trip; within the block a ``get`` or
    ``get_many`` of one of them answers from what was read. A key Redis lacked is still
    asked for, and a key written in the block is forgotten, so nothing reads older than
    it would have. With Redis unreachable nothing is read ahead; another cache backend
    (development's) only answers ``read_earlier``."""
    reader = getattr(cache, "read_many_ahead", cache.get_many)
    found = reader(keys)
    token, asked = _read_ahead.set(found), _asked_ahead.set(frozenset(keys if found else ()))
    try:
        yield
    finally:
        _read_ahead.reset(token)
        _asked_ahead.reset(asked)


def read_earlier(key: str) -> tuple[bool, object]:
    """Whether this request read ``key`` ahead (read_ahead) and the cache answered that
    read (it found any of its keys), and what ``key`` held then: None where the cache
    lacked it or, with Redis, it was written since. Never asks the cache."""
    if key not in _asked_ahead.get():
        return False, None
    return True, (_read_ahead.get() or {}).get(key)


def _forget_read(*keys) -> None:
    ahead = _read_ahead.get()
    if ahead:
        for key in keys:
            ahead.pop(key, None)


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

    def read_many_ahead(self, keys: list[str]) -> dict:
        try:
            return super().get_many(keys)
        except UNAVAILABLE as error:
            self._degraded("get_many", error)
            return {}

    def get(self, key, default=None, version=None):
        ahead = _read_ahead.get()
        if ahead and version is None and key in ahead:
            return ahead[key]
        try:
            return super().get(key, default, version)
        except UNAVAILABLE as error:
            self._degraded("get", error)
            return default

    def get_many(self, keys, version=None):
        ahead = _read_ahead.get()
        if not ahead or version is not None:
            return super().get_many(keys, version)
        found = {key: ahead[key] for key in keys if key in ahead}
        missing = [key for key in keys if key not in found]
        if missing:
            found.update(super().get_many(missing))
        return found

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except UNAVAILABLE as error:
            self._degraded("has_key", error)
            return False

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        _forget_read(key)
        try:
            return super().add(key, value, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("add", error)
            return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        _forget_read(key)
        try:
            super().set(key, value, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("set", error)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        _forget_read(*data)
        try:
            return super().set_many(data, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("set_many", error)
            return list(data)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        _forget_read(key)
        try:
            return super().touch(key, timeout, version)
        except UNAVAILABLE as error:
            self._degraded("touch", error)
            return False

    def delete(self, key, version=None):
        _forget_read(key)
        return super().delete(key, version)

    def delete_many(self, keys, version=None):
        _forget_read(*keys)
        return super().delete_many(keys, version)

    def incr(self, key, delta=1, version=None):
        _forget_read(key)
        return super().incr(key, delta, version)

    def tally(self, key: str, timeout: int) -> int:
        """Count one more at ``key``, a counter that lives ``timeout`` seconds from its
        first count, and return the count: one round trip (add then incr was three, on every
        post and chat message, moderation.ratelimit). Raises while Redis is unreachable."""
        return self.tally_and_read(key, timeout, [])[0]

    def tally_and_read(self, key: str, timeout: int, keys: list[str]) -> tuple[int, dict]:
        """``tally``, and the values at ``keys`` (as ``get_many``) in the same round trip:
        a write's rate limit brings its policy tokens (moderation.models.SharedVersion)."""
        _forget_read(key)
        key = self.make_and_validate_key(key)
        made = {self.make_and_validate_key(each): each for each in keys}
        with self._cache.get_client(key, write=True).pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=timeout, nx=True)  # as add() stores an int: plain digits
            pipe.incr(key)
            if made:
                pipe.mget(list(made))
            replies = pipe.execute()
        values = zip(made.values(), replies[2], strict=True) if made else ()
        loads = self._cache._serializer.loads
        return replies[1], {each: loads(value) for each, value in values if value is not None}

    def ping(self) -> None:
        """Raise unless Redis answers (for /healthz)."""
        self._cache.get_client(write=True).ping()


class Recent:
    """A bounded map in this process that forgets its least recently used entry first,
    safe to share between threads (the rendered blocks and frames of forum.templatetags.chrome
    and forum.frames); with ``ttl``, an entry is also forgotten ``ttl`` seconds after it was
    set (a member's kept standing and pages: forum.backends, forum.page_cache)."""

    def __init__(self, size: int, ttl: float | None = None) -> None:
        self.size, self.ttl = size, ttl
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.ttl is not None:
                expires, entry = entry
                if expires <= time.monotonic():
                    del self._entries[key]
                    return None
            self._entries.move_to_end(key)
            return entry

    def set(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value if self.ttl is None else (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class LocalFirstCache:
    """The shared cache with a bounded least-recently-used copy in this process in front.

    Only for keys that name their value for good (rendered posts keyed by their inputs,
    pages and rows keyed by versions): no other process can make a local entry stale, so
    the local copy needs no invalidation, and keeps it ``ttl`` seconds at most (an
    entry's life is its shared timeout plus that). ``copies``: each read gets its own
    unpickled copy, for values a request changes (model instances). Reads during a Redis
    outage are misses, like ResilientRedisCache's ``get``.
    """

    def __init__(self, *, size: int, ttl: float, copies: bool = False) -> None:
        self.size, self.ttl, self.copies = size, ttl, copies
        self._local: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def _keep(self, items: dict) -> None:
        expires = time.monotonic() + self.ttl
        with self._lock:
            for key, value in items.items():
                self._local[key] = (expires, pickle.dumps(value) if self.copies else value)
                self._local.move_to_end(key)
            while len(self._local) > self.size:
                self._local.popitem(last=False)

    def _local_many(self, keys: list[str]) -> dict:
        now = time.monotonic()
        found = {}
        with self._lock:
            for key in keys:
                entry = self._local.get(key)
                if entry is None:
                    continue
                if entry[0] <= now:
                    del self._local[key]
                    continue
                self._local.move_to_end(key)
                found[key] = entry[1]
        if self.copies:
            return {key: pickle.loads(value) for key, value in found.items()}  # noqa: S301 (our own)
        return found

    def get_many(self, keys: list[str]) -> dict:
        found = self._local_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            try:
                shared = cache.get_many(missing)
            except UNAVAILABLE:
                shared = {}
            self._keep(shared)
            found.update(shared)
        return found

    def set_many(self, items: dict, timeout: int) -> None:
        self._keep(items)
        cache.set_many(items, timeout)

    def get(self, key: str):
        return self.get_many([key]).get(key)

    def set(self, key: str, value, timeout: int) -> None:
        self.set_many({key: value}, timeout)
