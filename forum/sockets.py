"""What every Kinship WebSocket shares: its close codes (docs/chat-protocol.md), how it
answers a change of its member's authority, and how it answers while Redis is down."""

import json
import logging

from . import realtime
from .cache import UNAVAILABLE

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# "Try again later": a service the socket needs is unreachable, or the client stopped
# reading. The client reconnects after a pause (and a chat socket resumes with ?after=).
CLOSE_TRY_AGAIN = 1013


class AuthorityListener:
    """For a consumer that hears its member's authority group (forum.realtime.bump_authority):
    the session that logged out closes at once; any other change is re-checked by the
    consumer's own ``revalidate``."""

    session_key: str | None

    async def authority_changed(self, event: dict) -> None:
        """The member's standing may have changed."""
        if event.get("ended_session") == realtime.session_digest(self.session_key):
            await self._revoke(CLOSE_UNAUTHENTICATED)  # this very session logged out
        else:
            await self.revalidate()

    async def revalidate(self) -> None:
        raise NotImplementedError

    async def _revoke(self, code: int) -> None:
        raise NotImplementedError


class TryAgainWhileLayerDown:
    """For a consumer: while a service it needs is unreachable, answer the handshake with
    ``unavailable_frame`` (if any) and 1013, the close a client retries after a pause,
    instead of failing it with a traceback on every retry. Before ``connect`` runs that is
    Channels failing to make the socket's channel (the pub/sub layer subscribes to it
    there); within ``connect``, the consumer calls ``try_again_later``."""

    unavailable_frame: dict | None = None

    async def try_again_later(self) -> None:
        logger.warning("%s: a service is down on connect; told to retry", type(self).__name__)
        await self.accept()
        if self.unavailable_frame is not None:
            await self.send(text_data=json.dumps(self.unavailable_frame))
        await self.close(code=CLOSE_TRY_AGAIN)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except UNAVAILABLE:
            if hasattr(self, "base_send"):  # the consumer had started: not the handshake
                raise
            logger.warning("%s: Redis unavailable on connect; told to retry", type(self).__name__)
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            if self.unavailable_frame is not None:
                await send({"type": "websocket.send", "text": json.dumps(self.unavailable_frame)})
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
