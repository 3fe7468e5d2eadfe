"""The live review queue: a doorbell that tells a moderator's open queue page to refresh.

It carries no queue data: on "queue_changed" the page fetches the list again over
HTTP, where every permission check already lives. ``"urgent": true`` marks a change
that needs someone soon (crisis words), which the page announces assertively. Events come from
forum.realtime.broadcast_queue_change, sent after the change commits.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from forum import realtime
from forum.models import User

from . import permissions

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class QueueConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        ids = await database_sync_to_async(permissions.moderated_group_ids)(user)
        if ids is not None and not ids:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Site moderators hear every change on "modqueue.site"; group moderators, their groups'.
        names = (
            [realtime.queue_group(None)] if ids is None else [realtime.queue_group(i) for i in ids]
        )
        for name in names:
            await self.channel_layer.group_add(name, self.channel_name)
        self.groups_joined = names
        await self.accept()

    def _still_moderates(self) -> bool:
        user = User.objects.filter(pk=self.scope["user"].pk, is_active=True).first()
        if user is None:
            return False
        ids = permissions.moderated_group_ids(user)
        return ids is None or bool(ids)

    async def disconnect(self, code: int) -> None:
        for name in self.groups_joined:
            await self.channel_layer.group_discard(name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The client has nothing to say; a ping gets a pong, anything else is ignored."""
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def queue_changed(self, event: dict) -> None:
        # Authority is re-checked on every ring (moderators are few, rings rare): someone
        # no longer moderating, or no longer active, stops hearing the queue at once.
        if not await database_sync_to_async(self._still_moderates)():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        frame = {"type": "queue_changed"}
        if event.get("urgent"):
            # Someone's words suggest they may be at risk (moderation.actions.raise_crisis_alert).
            frame["urgent"] = True
        await self.send(text_data=json.dumps(frame))
