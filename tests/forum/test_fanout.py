"""forum.fanout: one subscription per room per worker, frames straight to each socket."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from forum import fanout, realtime
from tests.chat_helpers import run_async


class Client:
    """A socket's server-side send: takes frames at once unless ``blocked``."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.unblocked = asyncio.Event()
        self.unblocked.set()

    async def send(self, message: dict) -> None:
        assert message["type"] == "websocket.send"
        await self.unblocked.wait()
        self.frames.append(message["text"])


def outlet_for(client: Client, *, user_id: int = 1, authority=None, stalled=None):
    return fanout.Outlet(
        client.send,
        user_id=user_id,
        on_authority=authority or (lambda event: None),
        on_stalled=stalled or (lambda: None),
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_frames_wait_until_the_outlet_opens_then_go_in_order():
    async def scenario():
        client = Client()
        outlet = outlet_for(client)
        outlet.push("a")
        outlet.push("b")
        held = list(client.frames)
        outlet.open()
        outlet.push("c")  # open and writable: sent at once, no task, no wait
        return held, client.frames

    held, sent = asyncio.run(scenario())
    assert held == []
    assert sent == ["a", "b", "c"]


def test_holds_count_so_each_holder_must_open():
    async def scenario():
        client = Client()
        outlet = outlet_for(client)
        outlet.open()
        outlet.hold()  # the consumer answers a frame
        outlet.hold()  # a re-check of the member's standing
        outlet.push("message")
        outlet.open()
        after_one = list(client.frames)
        outlet.open()
        return after_one, client.frames

    after_one, after_both = asyncio.run(scenario())
    assert after_one == []
    assert after_both == ["message"]


def test_a_slow_client_gets_its_frames_in_order_and_holds_up_nobody():
    async def scenario():
        slow, quick = Client(), Client()
        slow_outlet, quick_outlet = outlet_for(slow), outlet_for(quick)
        slow_outlet.open()
        quick_outlet.open()
        slow.unblocked.clear()  # its buffer is full
        for text in ("1", "2", "3"):
            slow_outlet.push(text)
            quick_outlet.push(text)
        waiting = list(slow.frames)
        slow.unblocked.set()
        await settle()
        return waiting, slow.frames, quick.frames

    waiting, slow_frames, quick_frames = asyncio.run(scenario())
    assert quick_frames == ["1", "2", "3"]
    assert waiting == []
    assert slow_frames == ["1", "2", "3"]


def test_a_client_that_takes_nothing_is_given_up_once(settings):
    settings.KINSHIP_CHAT_SLOW_SEND_SECONDS = 0.05
    stalls = []

    async def scenario():
        client = Client()
        client.unblocked.clear()
        outlet = outlet_for(client, stalled=lambda: stalls.append(True))
        outlet.open()
        outlet.push("1")
        outlet.push("2")
        await asyncio.sleep(0.2)
        outlet.push("3")  # after giving up: dropped, not queued
        return outlet.closed, list(outlet.backlog)

    closed, backlog = asyncio.run(scenario())
    assert stalls == [True]
    assert closed and backlog == []


def test_a_client_that_went_away_closes_its_outlet():
    async def gone(message: dict) -> None:
        raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'close'.")

    async def scenario():
        outlet = fanout.Outlet(
            gone, user_id=1, on_authority=lambda e: None, on_stalled=lambda: None
        )
        outlet.open()
        outlet.push("frame")
        return outlet.closed

    assert asyncio.run(scenario()) is True


@pytest.mark.django_db(transaction=True)
def test_a_room_is_one_subscription_per_worker_and_reaches_each_socket():
    async def scenario():
        layer = get_channel_layer()
        relay = fanout.relay()
        clients = [Client() for _ in range(3)]
        outlets = [outlet_for(c, user_id=n) for n, c in enumerate(clients, start=1)]
        for outlet in outlets:
            await relay.join(7, outlet)
            outlet.open()
        channels = {room.channel for room in relay.rooms.values()}
        await layer.group_send(realtime.room_group(7), realtime.chat_event({"type": "ping"}))
        await layer.group_send(realtime.room_group(8), realtime.chat_event({"type": "other"}))
        async with asyncio.timeout(5):
            while not all(c.frames for c in clients):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for outlet in outlets:
            await relay.leave(7, outlet)
        return channels, [c.frames for c in clients], dict(relay.rooms)

    channels, frames, rooms_after = run_async(scenario)
    assert len(channels) == 1
    assert frames == [[json.dumps({"type": "ping"})]] * 3
    assert rooms_after == {}


@pytest.mark.django_db(transaction=True)
def test_a_change_of_standing_holds_that_member_s_sockets_until_re_checked():
    """The ban's broadcast comes before the next message's: the banned member's outlet is
    held before that message arrives, and the re-check decides what it gets."""

    async def scenario():
        layer = get_channel_layer()
        relay = fanout.relay()
        rechecks = []
        banned_client, other_client = Client(), Client()
        banned = outlet_for(banned_client, user_id=1, authority=rechecks.append)
        other = outlet_for(other_client, user_id=2)
        for outlet in (banned, other):
            await relay.join(7, outlet)
            outlet.open()
        await layer.group_send(
            realtime.authority_group(1), {"type": "authority.changed", "user": 1}
        )
        await layer.group_send(realtime.room_group(7), realtime.chat_event({"n": 1}))
        async with asyncio.timeout(5):
            while not other_client.frames:
                await asyncio.sleep(0.01)
        held = list(banned_client.frames)
        banned.close()  # the re-check refused the socket
        banned.open()
        await relay.leave(7, banned)
        await relay.leave(7, other)
        return rechecks, held, banned_client.frames, other_client.frames

    rechecks, held, banned_frames, other_frames = run_async(scenario)
    assert rechecks == [{"type": "authority.changed", "user": 1}]
    assert held == [] and banned_frames == []
    assert other_frames == [json.dumps({"n": 1})]


@pytest.mark.django_db(transaction=True)
def test_a_join_the_layer_refuses_leaves_nothing_joined(monkeypatch):
    async def scenario():
        relay = fanout.relay()

        async def refuse(group, channel):
            raise ConnectionError("Redis is down")

        monkeypatch.setattr(relay.layer, "group_add", refuse)
        with pytest.raises(ConnectionError):
            await relay.join(7, outlet_for(Client()))
        return dict(relay.rooms)

    assert run_async(scenario) == {}


@pytest.mark.django_db(transaction=True)
def test_renewing_joins_the_groups_again():
    """The core Redis layer forgets a group's members after group_expiry; the watch renews
    them hourly (forum.watch), so a room open for days keeps hearing."""

    async def scenario():
        layer = get_channel_layer()
        relay = fanout.relay()
        client = Client()
        outlet = outlet_for(client, user_id=3)
        await relay.join(7, outlet)
        outlet.open()
        channel = relay.rooms[7].channel
        for group in (realtime.room_group(7), realtime.authority_group(3)):
            await layer.group_discard(group, channel)  # as if expired
        await relay.renew()
        await layer.group_send(realtime.room_group(7), realtime.chat_event({"n": 1}))
        async with asyncio.timeout(5):
            while not client.frames:
                await asyncio.sleep(0.01)
        await relay.leave(7, outlet)
        return client.frames

    assert run_async(scenario) == [json.dumps({"n": 1})]
