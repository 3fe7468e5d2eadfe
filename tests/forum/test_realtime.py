"""forum.realtime: broadcasts leave once the change commits, in order, without a wait."""

import asyncio
import logging

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from forum import realtime
from tests.chat_helpers import db, run_async


@pytest.mark.django_db(transaction=True)
def test_a_write_in_a_worker_thread_does_not_wait_for_its_broadcasts(monkeypatch, caplog):
    """The serving loop sends them after the write returns, in commit order; one that
    fails is logged and the others still go."""

    async def scenario():
        layer = get_channel_layer()
        released, sent = asyncio.Event(), []

        async def group_send(group: str, event: dict) -> None:
            await released.wait()  # were the write waiting for this, it would never end
            if event["n"] == 2:
                raise ConnectionError("Redis is down")
            sent.append((group, event["n"]))

        monkeypatch.setattr(layer, "group_send", group_send)

        def write() -> str:
            for n in range(5):
                with transaction.atomic():
                    realtime.broadcast_on_commit("room.1", {"type": "chat.event", "n": n})
            return "stored"

        async with asyncio.timeout(5):
            answer = await db(write)
            waiting = list(sent)
            released.set()
            while len(sent) < 4:
                await asyncio.sleep(0.01)
        return answer, waiting, sent

    with caplog.at_level(logging.WARNING, logger="forum.realtime"):
        answer, waiting, sent = run_async(scenario)
    assert answer == "stored" and waiting == []
    assert sent == [("room.1", 0), ("room.1", 1), ("room.1", 3), ("room.1", 4)]
    assert "broadcast to room.1 failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_nothing_is_sent_for_a_write_that_rolls_back(monkeypatch):
    async def scenario():
        layer = get_channel_layer()
        sent = []

        async def group_send(group: str, event: dict) -> None:
            sent.append(event)

        monkeypatch.setattr(layer, "group_send", group_send)

        def write() -> None:
            with transaction.atomic():
                realtime.broadcast_on_commit("room.1", {"type": "chat.event", "n": 1})
                transaction.set_rollback(True)
            with transaction.atomic():
                realtime.broadcast_on_commit("room.1", {"type": "chat.event", "n": 2})

        await db(write)
        async with asyncio.timeout(5):
            while not sent:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        return sent

    assert run_async(scenario) == [{"type": "chat.event", "n": 2}]


@pytest.mark.django_db
def test_outside_any_event_loop_the_broadcast_is_sent_before_returning(monkeypatch):
    """A WSGI worker, a management command: no loop serves this thread."""
    layer = get_channel_layer()
    sent = []

    async def group_send(group: str, event: dict) -> None:
        sent.append(event["n"])

    monkeypatch.setattr(layer, "group_send", group_send)
    realtime._send("room.1", {"type": "chat.event", "n": 1})
    assert sent == [1]
