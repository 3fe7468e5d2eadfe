"""One watcher per worker process (per event loop) over its open chat sockets.

Rather than a timer in every socket, a single loop:

- every KINSHIP_CHAT_RECHECK_SECONDS reads the authority epochs of the members
  connected here (one cache round trip) and asks the sockets of anyone whose epoch
  moved, or whose session has expired, to re-check their right to stay (logout,
  password change, removal ...);
- every KINSHIP_CHAT_HEARTBEAT_SECONDS reads the latest sequence number of every
  room with a socket here (one query) and sends each socket its heartbeat;
- every PRESENCE_REFRESH seconds renews this process's presence entries, drops
  expired ones (sockets that died without a close, anywhere) and tells a room when
  its list of members changed;
- every GROUP_RENEWAL seconds joins its rooms' groups again (forum.fanout.Relay.renew).
"""

import asyncio
import logging
import time
import weakref
from typing import Protocol

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import fanout, presence, realtime, selectors

logger = logging.getLogger(__name__)

PRESENCE_REFRESH = presence.TTL_SECONDS / 3
GROUP_RENEWAL = 60 * 60


class Watched(Protocol):
    user_id: int
    room_id: int
    handle: str
    conn_id: str
    authority_epoch: int | None
    session_expires_at: float  # a timestamp

    async def revalidate(self) -> None: ...

    async def send_heartbeat(self, latest_seq: int) -> None: ...


class Watch:
    def __init__(self) -> None:
        self.sockets: set[Watched] = set()
        self.task: asyncio.Task | None = None
        self.last_members: dict[int, list[str]] = {}
        self.beating: set[asyncio.Task] = set()

    def add(self, socket: Watched) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, socket: Watched) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        now = time.monotonic()
        next_recheck = now + settings.KINSHIP_CHAT_RECHECK_SECONDS
        next_heartbeat = now + settings.KINSHIP_CHAT_HEARTBEAT_SECONDS
        next_presence = now + PRESENCE_REFRESH
        next_renewal = now + GROUP_RENEWAL
        while self.sockets:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            try:
                if now >= next_recheck:
                    next_recheck = now + settings.KINSHIP_CHAT_RECHECK_SECONDS
                    await self._recheck_authority()
                if now >= next_heartbeat:
                    next_heartbeat = now + settings.KINSHIP_CHAT_HEARTBEAT_SECONDS
                    await self._heartbeat()
                if now >= next_presence:
                    next_presence = now + PRESENCE_REFRESH
                    await self.refresh_presence()
                if now >= next_renewal:
                    next_renewal = now + GROUP_RENEWAL
                    await fanout.relay().renew()
            except Exception:  # a passing cache or database fault: try again next round
                logger.warning("chat watch round failed", exc_info=True)

    async def _recheck_authority(self) -> None:
        sockets = list(self.sockets)
        epochs = await sync_to_async(realtime.authority_epochs)(
            sorted({socket.user_id for socket in sockets})
        )
        wall_clock = time.time()
        for socket in sockets:
            epoch = epochs.get(socket.user_id, 0)
            # None: the cache is unreachable, so every socket re-checks each round.
            changed = epoch is None or epoch != socket.authority_epoch
            if changed or wall_clock >= socket.session_expires_at:
                socket.authority_epoch = epoch
                asyncio.get_running_loop().create_task(socket.revalidate())

    async def _heartbeat(self) -> None:
        sockets = list(self.sockets)
        seqs = await database_sync_to_async(selectors.latest_seqs)(
            sorted({socket.room_id for socket in sockets})
        )
        loop = asyncio.get_running_loop()
        for socket in sockets:
            # Each socket on its own: one whose client stopped reading must not hold up
            # the heartbeats (nor the authority re-checks) of every other socket here.
            task = loop.create_task(self._beat(socket, seqs.get(socket.room_id, 0)))
            self.beating.add(task)
            task.add_done_callback(self.beating.discard)

    async def _beat(self, socket: Watched, latest_seq: int) -> None:
        try:
            await socket.send_heartbeat(latest_seq)
        except Exception:  # the connection is gone (closed, or its consumer crashed)
            # Stop watching it, so its presence entry is no longer renewed and expires.
            self.discard(socket)

    async def refresh_presence(self) -> None:
        """Renew every socket's entry and read every room's list: one round trip each for
        the whole process, however many sockets (one per socket cost idle CPU)."""
        store, now = presence.store(), presence.now()
        sockets = list(self.sockets)
        await store.touch_many(
            [(socket.room_id, socket.conn_id, socket.handle) for socket in sockets], now=now
        )
        rooms = await store.members_of(sorted({socket.room_id for socket in sockets}), now=now)
        for room_id, members in rooms.items():
            await announce_presence(room_id, known=self.last_members, members=members)


async def announce_presence(
    room_id: int, *, known: dict[int, list[str]] | None = None, members: list[str] | None = None
) -> None:
    """Send the room's member list to everyone in it (only if it changed, given ``known``);
    ``members``: the list if already read."""
    if members is None:
        members = await presence.store().members(room_id, now=presence.now())
    if known is not None:
        if known.get(room_id) == members:
            return
        known[room_id] = members
    layer = get_channel_layer()
    await layer.group_send(
        realtime.room_group(room_id),
        {"type": "chat.event", "frame": {"type": "presence", "members": members}},
    )


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watch]" = (
    weakref.WeakKeyDictionary()
)


def watch() -> Watch:
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = Watch()
    return _watches[loop]
