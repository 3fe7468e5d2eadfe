"""The notifications socket (ws/notifications/): keeps a signed-in page's badge current.

It carries the member's unread count and nothing else, never what happened or where
(docs/chat-protocol.md, "The notifications socket"). ``forum.notify`` sends the count to
the member's user group after every notification commits, and after they read them.

Like the chat sockets, open notification sockets re-check their authority: at once when
told on the member's authority group (forum.realtime.bump_authority), and as a backstop one
watcher per event loop polls the authority epochs of its members (one cache round trip
every KINSHIP_CHAT_RECHECK_SECONDS). Sockets of whoever logged out, changed their password
or was deactivated, or whose session expired, close. The review queue's sockets
(moderation.consumers) are watched by the same watcher.
"""

import asyncio
import contextlib
import json
import logging
import time
import weakref

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.utils.crypto import constant_time_compare

from . import notify, realtime, selectors
from .cache import UNAVAILABLE
from .models import User
from .sockets import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    AuthorityListener,
    TryAgainWhileLayerDown,
)

logger = logging.getLogger(__name__)

# A client may ask for its count again (a tab coming back to view); not more often.
SYNC_INTERVAL = 5.0


def socket_refusal(*, user_id: int, session_key: str | None, session_hash: str) -> int | None:
    """Why an open notifications socket must close now (a close code), or None."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return CLOSE_FORBIDDEN
    if selectors.session_expiry(session_key) is None:
        return CLOSE_UNAUTHENTICATED
    if not constant_time_compare(session_hash or "", user.get_session_auth_hash()):
        return CLOSE_UNAUTHENTICATED
    return None


class WatchedSocket(TryAgainWhileLayerDown, AuthorityListener, AsyncWebsocketConsumer):
    """A socket that closes when its member's authority goes: told on the member's
    authority group, or found by the watcher polling their epoch. Notifications and the
    review queue (moderation.consumers) are both; ``revalidate`` says what each re-checks."""

    user_id: int
    session_key: str | None = None
    session_hash: str = ""
    authority_epoch: int | None
    session_expires_at: float
    closing: bool = False

    async def watch_authority(self, user) -> None:
        """Remember the member's session and epoch, and hear their authority group."""
        session = self.scope["session"]
        self.user_id = user.pk
        self.session_key = session.session_key
        self.session_hash = session.get(HASH_SESSION_KEY, "")
        self.session_expires_at = session.get_expiry_date().timestamp()
        self.authority_epoch = (await sync_to_async(realtime.authority_epochs)([user.pk]))[user.pk]
        await self.channel_layer.group_add(realtime.authority_group(user.pk), self.channel_name)

    async def unwatch_authority(self) -> None:
        watch().discard(self)
        if hasattr(self, "user_id"):
            await self.leave(realtime.authority_group(self.user_id))

    async def leave(self, *groups: str) -> None:
        for group in groups:
            # While Redis is unreachable the entry cannot be removed; it expires with the
            # channel layer's group_expiry.
            with contextlib.suppress(*UNAVAILABLE):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def try_again_later(self) -> None:
        self.closing = True  # never watched: nothing to revoke
        await super().try_again_later()

    async def _revoke(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            watch().discard(self)
            await self.close(code=code)


class NotificationConsumer(WatchedSocket):
    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.last_sync = time.monotonic()
        try:
            await self.watch_authority(user)
            self.group_name = realtime.user_group(user.pk)
            await self.channel_layer.group_add(self.group_name, self.channel_name)
        except UNAVAILABLE:
            await self.try_again_later()
            return
        await self.accept()
        watch().add(self)
        await self._send_count()

    async def disconnect(self, code: int) -> None:
        await self.unwatch_authority()
        if self.group_name is not None:
            await self.leave(self.group_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """A ping gets a pong; a sync gets the current count (at most every
        SYNC_INTERVAL seconds); anything else is ignored."""
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        if frame.get("type") == "ping":
            await self._send({"type": "pong"})
        elif frame.get("type") == "sync" and time.monotonic() - self.last_sync >= SYNC_INTERVAL:
            self.last_sync = time.monotonic()
            await self._send_count()

    async def notify_unread(self, event: dict) -> None:
        """From forum.notify.broadcast_unread_count: the count, counted after commit."""
        await self._send({"type": "unread", "count": event["count"]})

    async def _send_count(self) -> None:
        count = await database_sync_to_async(notify.unread_count)(self.user_id)
        await self._send({"type": "unread", "count": count})

    async def _send(self, frame: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(frame))

    async def revalidate(self) -> None:
        code = await database_sync_to_async(socket_refusal)(
            user_id=self.user_id, session_key=self.session_key, session_hash=self.session_hash
        )
        if code is None:
            expiry = await database_sync_to_async(selectors.session_expiry)(self.session_key)
            self.session_expires_at = expiry or 0.0  # browsing may have extended it
        else:
            await self._revoke(code)


class NotifyWatch:
    """One per event loop: re-checks the notification and review-queue sockets whose
    member's authority epoch moved, or whose session expired."""

    def __init__(self) -> None:
        self.sockets: set[WatchedSocket] = set()
        self.task: asyncio.Task | None = None

    def add(self, socket: WatchedSocket) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, socket: WatchedSocket) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.KINSHIP_CHAT_RECHECK_SECONDS)
            try:
                await self.recheck()
            except Exception:  # a passing cache fault: try again next round
                logger.warning("notifications watch round failed", exc_info=True)

    async def recheck(self) -> None:
        sockets = list(self.sockets)
        if not sockets:
            return
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


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, NotifyWatch]" = (
    weakref.WeakKeyDictionary()
)


def watch() -> NotifyWatch:
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = NotifyWatch()
    return _watches[loop]
