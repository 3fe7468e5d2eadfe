"""forum.sockets: how every socket answers a change of its member's authority."""

from asgiref.sync import async_to_sync

from forum import realtime
from forum.sockets import CLOSE_UNAUTHENTICATED, AuthorityListener


class Socket(AuthorityListener):
    def __init__(self, session_key: str) -> None:
        self.session_key = session_key
        self.calls: list[object] = []

    async def revalidate(self) -> None:
        self.calls.append("revalidate")

    async def _revoke(self, code: int) -> None:
        self.calls.append(code)


def test_the_session_that_logged_out_closes_and_any_other_change_is_rechecked():
    mine, other = Socket("session-a"), Socket("session-b")
    logout = {"type": "authority.changed", "ended_session": realtime.session_digest("session-a")}
    for socket in (mine, other):
        async_to_sync(socket.authority_changed)(logout)
        async_to_sync(socket.authority_changed)({"type": "authority.changed"})
    assert mine.calls == [CLOSE_UNAUTHENTICATED, "revalidate"]
    assert other.calls == ["revalidate", "revalidate"]
