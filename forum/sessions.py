"""Sessions as Django's cached_db keeps them, with the member's id at the head of a
signed-in session's key ("42-k3j..."), so that a page can read the member's standing
version (forum.backends) in the same round trip to Redis as the session itself.

The id is a hint only: a page trusts the member the session's data names, and a key
without a head, or naming someone else, just reads the member from the database.
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.utils.crypto import get_random_string

# django_session.session_key holds 40 characters; the random part is never under 28
# (144 bits) for any id below 10**11.
KEY_LENGTH = 40


def member_in_key(session_key: str | None) -> int | None:
    """The member id at the head of ``session_key``, if it has one."""
    head, dash, _ = (session_key or "").partition("-")
    return int(head) if dash and head.isdigit() else None


class SessionStore(CachedDBStore):
    def _random_key(self) -> str:
        member = getattr(self, "_session_cache", {}).get(SESSION_KEY)
        head = f"{member}-" if member and str(member).isdigit() else ""
        return head + get_random_string(KEY_LENGTH - len(head), VALID_KEY_CHARS)

    def _get_new_session_key(self) -> str:
        while True:
            session_key = self._random_key()
            if not self.exists(session_key):
                return session_key

    async def _aget_new_session_key(self) -> str:
        while True:
            session_key = self._random_key()
            if not await self.aexists(session_key):
                return session_key
