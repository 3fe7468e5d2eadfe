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

Entry = tuple[int, str, str]  # (room id, connection id, handle)


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, float]] = {}

    async def touch(self, room_id: int, conn_id: str, handle: str, *, now: float) -> None:
        self._rooms.setdefault(room_id, {})[f"{conn_id}|{handle}"] = now + TTL_SECONDS

    async def touch_many(self, entries: list[Entry], *, now: float) -> None:
        for room_id, conn_id, handle in entries:
            await self.touch(room_id, conn_id, handle, now=now)

    async def leave(self, room_id: int, conn_id: str, handle: str) -> None:
        self._rooms.get(room_id, {}).pop(f"{conn_id}|{handle}", None)

    async def members(self, room_id: int, *, now: float) -> list[str]:
        entries = self._rooms.get(room_id, {})
        for key in [key for key, expires in entries.items() if expires <= now]:
            del entries[key]
        return sorted({key.split("|", 1)[1] for key in entries})

    async def members_of(self, room_ids: list[int], *, now: float) -> dict[int, list[str]]:
        return {room_id: await self.members(room_id, now=now) for room_id in room_ids}


class RedisPresence:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    @staticmethod
    def _key(room_id: int) -> str:
        return f"kinship:presence:{room_id}"

    async def touch(self, room_id: int, conn_id: str, handle: str, *, now: float) -> None:
        await self.touch_many([(room_id, conn_id, handle)], now=now)

    async def touch_many(self, entries: list[Entry], *, now: float) -> None:
        """Renew many entries in one round trip (a worker renews all of its sockets)."""
        by_room: dict[int, dict[str, float]] = {}
        for room_id, conn_id, handle in entries:
            by_room.setdefault(room_id, {})[f"{conn_id}|{handle}"] = now + TTL_SECONDS
        if not by_room:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id, mapping in by_room.items():
                pipe.zadd(self._key(room_id), mapping)
                pipe.expire(self._key(room_id), TTL_SECONDS * 4)
            await pipe.execute()

    async def leave(self, room_id: int, conn_id: str, handle: str) -> None:
        await self._redis.zrem(self._key(room_id), f"{conn_id}|{handle}")

    async def members(self, room_id: int, *, now: float) -> list[str]:
        return (await self.members_of([room_id], now=now))[room_id]

    async def members_of(self, room_ids: list[int], *, now: float) -> dict[int, list[str]]:
        """Each room's members, expired entries dropped, in one round trip."""
        if not room_ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id in room_ids:
                pipe.zremrangebyscore(self._key(room_id), "-inf", now)
                pipe.zrange(self._key(room_id), 0, -1)
            replies = await pipe.execute()
        return {
            room_id: sorted({entry.decode().split("|", 1)[1] for entry in entries})
            for room_id, entries in zip(room_ids, replies[1::2], strict=True)
        }


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
