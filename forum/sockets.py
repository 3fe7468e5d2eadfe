"""What every Kinship WebSocket shares: its close codes (docs/chat-protocol.md) and how it
answers a change of its member's authority."""

from . import realtime

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
