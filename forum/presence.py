"""Who is in a chat room now, right across worker processes.

Each open socket holds an entry that expires unless its worker refreshes it, so a
socket that dies without a close (a killed worker, a dropped network) leaves the
list on its own. With REDIS_URL the entries are a sorted set per room in Redis,
shared by all workers; without it they live in this process, which is right only
for the single-process development server.
"""

import asyncio
import time
import weakref

import redis.asyncio as aioredis
from django.conf import settings

TTL_SECONDS = 30


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, float]] = {}

    async def touch(self, room_id: int, conn_id: str, handle: str, *, now: float) -> None:
        self._rooms.setdefault(room_id, {})[f"{conn_id}|{handle}"] = now + TTL_SECONDS

    async def leave(self, room_id: int, conn_id: str, handle: str) -> None:
        self._rooms.get(room_id, {}).pop(f"{conn_id}|{handle}", None)

    async def members(self, room_id: int, *, now: float) -> list[str]:
        entries = self._rooms.get(room_id, {})
        for key in [key for key, expires in entries.items() if expires <= now]:
            del entries[key]
        return sorted({key.split("|", 1)[1] for key in entries})


class RedisPresence:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    @staticmethod
    def _key(room_id: int) -> str:
        return f"kinship:presence:{room_id}"

    async def touch(self, room_id: int, conn_id: str, handle: str, *, now: float) -> None:
        key = self._key(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {f"{conn_id}|{handle}": now + TTL_SECONDS})
            pipe.expire(key, TTL_SECONDS * 4)
            await pipe.execute()

    async def leave(self, room_id: int, conn_id: str, handle: str) -> None:
        await self._redis.zrem(self._key(room_id), f"{conn_id}|{handle}")

    async def members(self, room_id: int, *, now: float) -> list[str]:
        key = self._key(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrange(key, 0, -1)
            _, entries = await pipe.execute()
        return sorted({entry.decode().split("|", 1)[1] for entry in entries})


_memory = MemoryPresence()
# Redis clients belong to the event loop they were made on: one per loop.
_redis_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisPresence]" = (
    weakref.WeakKeyDictionary()
)


def store() -> MemoryPresence | RedisPresence:
    if not settings.REDIS_URL:
        return _memory
    loop = asyncio.get_running_loop()
    if loop not in _redis_by_loop:
        _redis_by_loop[loop] = RedisPresence(settings.REDIS_URL)
    return _redis_by_loop[loop]


def now() -> float:
    return time.time()
