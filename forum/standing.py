"""A member's standing version: a value in Redis that every change to what the member's
statement reads (forum.backends: their row, unread notifications, sanctions, roles, held
replies, and a thread page's follows, mutes, supports and blocks) replaces, so that a
worker may keep the statement's answer under it and a later page that finds the same
version need not ask the database again.

Versions are replaced at once and again when the transaction commits (as forum.page_cache
does), so a reader who read the old rows just before the commit cannot keep them under the
new version. Replaced by forum.signals for rows saved and deleted one by one, and by the
writes that update many rows at once (forum.engagement, forum.notify).
"""

import uuid
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction

from .cache import read_earlier


def version_key(user_id: int) -> str:
    return f"member-v:{user_id}"


def read_ahead(user_id: int) -> tuple[bool, str | None]:
    """Whether this request read the member's version ahead, with the cache answering,
    and the version it read (forum.cache.read_earlier)."""
    return read_earlier(version_key(user_id))


def ensure(user_id: int) -> None:
    """Give the member a version if the cache has none for them (a new cache, an evicted
    key): until then every page reads them from the database."""
    cache.add(version_key(user_id), uuid.uuid4().hex, None)


def _replace(keys: list[str]) -> None:
    value = uuid.uuid4().hex
    cache.set_many(dict.fromkeys(keys, value), None)


def changed(*user_ids: int | None) -> None:
    """The standing of ``user_ids`` changed (or is about to, in this transaction)."""
    changed_many(user_ids)


def changed_many(user_ids: Iterable[int | None]) -> None:
    keys = sorted({version_key(user_id) for user_id in user_ids if user_id is not None})
    if keys:
        _replace(keys)
        transaction.on_commit(lambda: _replace(keys))
