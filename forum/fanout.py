"""Room broadcasts reach a worker's chat sockets through one subscription per room.

Were every socket in the room's group, a broadcast would cost, per socket, a queue put, a
task and a dispatch in Channels, and a pass through the session middleware's ``send``:
most of a worker's CPU per delivered frame in the fan-out bench (bench/README.md, "Latest
runs"). Instead each worker process (each event loop) joins a room's group once, on a
channel of its own, and hands every frame straight to the server's ``send`` of each of its
sockets in the room.

A frame goes out at once when the socket can take it. When it cannot (the client's
buffer is full), that socket's later frames wait behind it in order, so a slow reader
delays nobody else; one that takes nothing for KINSHIP_CHAT_SLOW_SEND_SECONDS is given
up (its consumer closes it with 1013 and the client resumes from the database).
"""

import asyncio
import collections
import logging
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from . import realtime

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


def _start(coroutine: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run ``coroutine`` up to its first wait: None if it finished without one, else an
    awaitable that finishes it. (What Python 3.12's eager tasks do; a task per frame per
    socket is the cost this module exists to avoid.)"""
    try:
        waiting = coroutine.send(None)
    except StopIteration:
        return None
    return _finish(coroutine, waiting)


@types.coroutine
def _finish(coroutine: Coroutine[Any, Any, None], waiting: Any):
    while True:
        try:
            resumed = yield waiting
        except BaseException as error:  # cancellation (a timeout) goes on into the send
            try:
                waiting = coroutine.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting = coroutine.send(resumed)
            except StopIteration:
                return


class Outlet:
    """One socket's end of its room's subscription: its frames, in order.

    Frames wait in ``backlog`` while the outlet is held and while an earlier frame waits
    for the client. It is held while its consumer sends frames of its own (the connect
    frames, history first, or its answer to a client's frame: no broadcast overtakes them)
    and while the member's right to the socket is re-checked (nothing broadcast after a
    ban reaches the banned).
    """

    def __init__(
        self,
        send: Send,
        *,
        user_id: int,
        on_authority: Callable[[dict[str, Any]], None],
        on_stalled: Callable[[], None],
    ) -> None:
        self.send = send  # the server's own ASGI send
        self.user_id = user_id
        self.on_authority = on_authority  # re-checks, then opens the outlet it finds held
        self.on_stalled = on_stalled
        self.backlog: collections.deque[str] = collections.deque()
        self.holds = 1  # until the connect frames are sent
        self.closed = False
        self.draining: asyncio.Task | None = None

    def push(self, text: str) -> None:
        if self.closed:
            return
        if self.holds or self.draining is not None:
            self.backlog.append(text)
        else:
            self._write(text)

    def hold(self) -> None:
        self.holds += 1

    def open(self) -> None:
        """End one hold; once none is left, the frames flow, those held first."""
        self.holds -= 1
        while not self.holds and self.backlog and self.draining is None and not self.closed:
            self._write(self.backlog.popleft())

    def close(self) -> None:
        self._give_up()
        if self.draining is not None:
            self.draining.cancel()

    def _write(self, text: str) -> None:
        try:
            pending = _start(self.send({"type": "websocket.send", "text": text}))
        except Exception:  # the client went away; its consumer hears so and leaves
            self._give_up()
            return
        if pending is not None:
            self.draining = asyncio.get_running_loop().create_task(self._drain(pending))

    async def _drain(self, pending: Awaitable[None]) -> None:
        try:
            while True:
                async with asyncio.timeout(settings.KINSHIP_CHAT_SLOW_SEND_SECONDS):
                    await pending
                if self.holds or self.closed or not self.backlog:
                    break
                pending = self.send({"type": "websocket.send", "text": self.backlog.popleft()})
        except TimeoutError:
            self._give_up()
            self.on_stalled()
        except Exception:  # the client went away; its consumer hears so and leaves
            self._give_up()
        finally:
            self.draining = None

    def _give_up(self) -> None:
        self.closed = True
        self.backlog.clear()


class _Room:
    def __init__(self, channel: str, listening: asyncio.Task) -> None:
        self.channel = channel
        self.listening = listening
        self.outlets: set[Outlet] = set()
        self.members: collections.Counter[int] = collections.Counter()  # outlets per member


class Relay:
    """This event loop's subscriptions: per room with a socket here, one channel in the
    room's group and in the authority group of each member here (forum.realtime), so a
    change of a member's standing arrives in order with the room's frames."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.rooms: dict[int, _Room] = {}
        self.lock = asyncio.Lock()

    async def join(self, room_id: int, outlet: Outlet) -> None:
        """Raises what the channel layer raises (Redis unreachable): nothing is joined."""
        async with self.lock:
            room = self.rooms.get(room_id)
            if room is None:
                channel = await self.layer.new_channel()
                await self.layer.group_add(realtime.room_group(room_id), channel)
                listening = asyncio.get_running_loop().create_task(self._listen(channel, room_id))
                room = self.rooms[room_id] = _Room(channel, listening)
            try:
                if not room.members[outlet.user_id]:
                    group = realtime.authority_group(outlet.user_id)
                    await self.layer.group_add(group, room.channel)
            except BaseException:
                if not room.outlets:
                    await self._drop(room_id)
                raise
            room.members[outlet.user_id] += 1
            room.outlets.add(outlet)

    async def leave(self, room_id: int, outlet: Outlet) -> None:
        outlet.close()
        async with self.lock:
            room = self.rooms.get(room_id)
            if room is None or outlet not in room.outlets:
                return
            room.outlets.discard(outlet)
            room.members[outlet.user_id] -= 1
            if not room.members[outlet.user_id]:
                del room.members[outlet.user_id]
                await self._discard(realtime.authority_group(outlet.user_id), room.channel)
            if not room.outlets:
                await self._drop(room_id)

    async def _drop(self, room_id: int) -> None:
        room = self.rooms.pop(room_id)
        room.listening.cancel()
        await self._discard(realtime.room_group(room_id), room.channel)

    async def _discard(self, group: str, channel: str) -> None:
        try:
            await self.layer.group_discard(group, channel)
        except Exception:  # a stale member of a group only receives frames nobody reads
            logger.warning("leaving group %s failed", group, exc_info=True)

    async def renew(self) -> None:
        """Join the groups again: the core Redis layer forgets a group member after its
        group_expiry (a day by default), and a room may stay open longer."""
        for room_id, room in list(self.rooms.items()):
            await self.layer.group_add(realtime.room_group(room_id), room.channel)
            for user_id in list(room.members):
                await self.layer.group_add(realtime.authority_group(user_id), room.channel)

    def stop(self) -> list[asyncio.Task]:
        tasks = [room.listening for room in self.rooms.values()]
        for task in tasks:
            task.cancel()
        self.rooms.clear()
        return tasks

    async def _listen(self, channel: str, room_id: int) -> None:
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: the layer reconnects; clients resume
                logger.warning("room %s's subscription failed; retrying", room_id, exc_info=True)
                await asyncio.sleep(1)
                continue
            room = self.rooms.get(room_id)
            if room is not None:
                self._deliver(room, event)

    @staticmethod
    def _deliver(room: _Room, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "chat.event":
            text = realtime.event_text(event)
            for outlet in tuple(room.outlets):
                outlet.push(text)
        elif kind == "authority.changed":
            for outlet in tuple(room.outlets):
                if outlet.user_id == event.get("user"):
                    outlet.hold()  # before any later frame: opened once re-checked
                    outlet.on_authority(event)


_relays: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay]" = weakref.WeakKeyDictionary()


def relay() -> Relay:
    loop = asyncio.get_running_loop()
    if loop not in _relays:
        _relays[loop] = Relay()
    return _relays[loop]
