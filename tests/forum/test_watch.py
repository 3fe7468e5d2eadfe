"""The per-process watch renews presence for all of its sockets at once."""

import asyncio
import random
from dataclasses import dataclass

import pytest
from django.conf import settings

import forum.watch as watch_module
from forum import presence
from forum.watch import Watch


@dataclass(eq=False)
class Socket:
    room_id: int
    conn_id: str
    handle: str


class Layer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


@pytest.fixture
def layer(monkeypatch) -> Layer:
    fake = Layer()
    monkeypatch.setattr(watch_module, "get_channel_layer", lambda: fake)
    return fake


def rooms() -> list[int]:
    # Presence keys are shared by everything on this Redis: rooms of our own.
    first = random.randrange(10**8, 10**9)
    return [first, first + 1, first + 2]


def test_refresh_presence_renews_and_lists_each_room_once(layer):
    room_ids = rooms()
    sockets = [Socket(room_ids[n % 3], f"c{n}", f"member{n % 7}") for n in range(60)]

    async def scenario() -> dict[int, list[str]]:
        watch = Watch()
        watch.sockets = set(sockets)
        await watch.refresh_presence()
        await watch.refresh_presence()  # nothing changed: nothing announced again
        return await presence.store().members_of(room_ids, now=presence.now())

    listed = asyncio.run(scenario())
    for room_id in room_ids:
        expected = sorted({s.handle for s in sockets if s.room_id == room_id})
        assert listed[room_id] == expected
    assert sorted(group for group, _ in layer.sent) == sorted(f"room.{r}" for r in room_ids)
    for group, message in layer.sent:
        room_id = int(group.split(".")[1])
        assert message["frame"] == {"type": "presence", "members": listed[room_id]}


def test_entries_expire_unless_renewed():
    room_id = rooms()[0]

    async def scenario() -> tuple[list[str], list[str]]:
        store, now = presence.store(), presence.now()
        await store.touch_many([(room_id, "a", "alder"), (room_id, "b", "birch")], now=now)
        later = now + presence.TTL_SECONDS - 1
        await store.touch_many([(room_id, "b", "birch")], now=later)
        within = (await store.members_of([room_id], now=later))[room_id]
        after = (await store.members_of([room_id], now=now + presence.TTL_SECONDS + 1))[room_id]
        return within, after

    within, after = asyncio.run(scenario())
    assert within == ["alder", "birch"]
    assert after == ["birch"]  # alder's entry was not renewed


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis presence store")
def test_redis_refresh_is_two_round_trips_for_any_number_of_sockets(layer):
    room_ids = rooms()
    sockets = [Socket(room_ids[n % 3], f"c{n}", f"member{n}") for n in range(200)]

    async def scenario() -> int:
        store = presence.store()
        calls = 0
        pipeline = store._redis.pipeline

        def counted(*args, **kwargs):
            nonlocal calls
            calls += 1
            return pipeline(*args, **kwargs)

        store._redis.pipeline = counted
        try:
            watch = Watch()
            watch.sockets = set(sockets)
            await watch.refresh_presence()
        finally:
            del store._redis.pipeline
        return calls

    assert asyncio.run(scenario()) == 2  # renew all, then read every room's list
    assert len(layer.sent) == 3
