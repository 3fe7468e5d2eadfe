"""Thread pages from the cache: whole pages for visitors, and for members the rows that
read the same for everyone (the thread, its group, a page of posts).

Every visitor sees the same thread page, so one rendering serves them all; members add
only what is theirs (forum.selectors.thread_to_read). Each page or set of rows is stored
under the versions of its thread and of the whole site, read before the database is; a
write replaces the version, so later readers miss and build afresh:

- a post or thread saved or deleted: its thread's version (forum.signals);
- a support given or taken back, whose count is updated in place: its thread's version
  (forum.engagement);
- a group, a context note or a note's attachment saved or deleted, or an account erased
  (forum.privacy): the site's version, as these reach many threads and are rare.

Versions are replaced at once and again when the transaction commits, so a reader who read
the old rows just before the commit cannot file them under the new version. A page lives
TIMEOUT seconds in Redis and LOCAL_TTL more in a worker at most, which bounds what a missed
version or a cache outage could show.
Pages carrying anything of one visitor (a message, a CSRF token, a cookie) are not stored.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from .cache import UNAVAILABLE, LocalFirstCache, Recent

TIMEOUT = 60
SITE_VERSION = "page-v:site"
# Versions are read from Redis on every request; what they name is kept in each process
# too, for LOCAL_TTL seconds at most.
LOCAL_TTL = 10
pages = LocalFirstCache(size=128, ttl=LOCAL_TTL)
# Model instances, which each request changes: each read is a copy.
rows = LocalFirstCache(size=256, ttl=LOCAL_TTL, copies=True)


def _thread_version(thread_id: int) -> str:
    return f"page-v:thread:{thread_id}"


def _replace(key: str) -> None:
    cache.set(key, uuid.uuid4().hex, None)


def _replace_now_and_on_commit(key: str) -> None:
    _replace(key)
    transaction.on_commit(lambda: _replace(key))


def thread_changed(thread_id: int) -> None:
    _replace_now_and_on_commit(_thread_version(thread_id))


def site_changed() -> None:
    _replace_now_and_on_commit(SITE_VERSION)


def version_keys(thread_id: int) -> list[str]:
    """Where versions(thread_id) reads, for a page that reads them ahead."""
    return [SITE_VERSION, _thread_version(thread_id)]


def versions(thread_id: int) -> tuple[str, str] | None:
    """The site's and the thread's versions; None while the cache is not answering. Read
    once for a page: whatever is filed under them was built after they were read."""
    keys = version_keys(thread_id)
    try:
        found = cache.get_many(keys)
        if len(found) < len(keys):
            for key in keys:
                if key not in found:
                    cache.add(key, uuid.uuid4().hex, None)
            found = cache.get_many(keys)
    except UNAVAILABLE:
        return None
    if len(found) < len(keys):
        return None
    return found[SITE_VERSION], found[_thread_version(thread_id)]


# A member's page as it last showed (forum.frames: the navigation around the body, its
# holes unfilled), under everything a write to its inputs replaces: the member's standing
# version (forum.standing) and the thread's and the site's versions. Their next page of it
# that finds the same is filled from it, without the thread's rows (forum.views.threads).
# In this worker only. An entry is a few KiB of its own (the texts at the seams); the rest
# is the body it shares with forum.fragments.bodies, which it keeps alive, so there are
# few of them.
MEMBER_PAGE_SECONDS = 10
member_pages = Recent(256, ttl=MEMBER_PAGE_SECONDS)

T = TypeVar("T")


def shared(name: str, thread_versions: tuple[str, str] | None, build: Callable[[], T]) -> T:
    """Rows of a thread that read the same for every viewer, built by ``build`` once per
    ``thread_versions`` (from ``versions``: built afresh when None; not stored when the
    rows are None)."""
    if thread_versions is None:
        return build()
    key = f"rows:{name}:{thread_versions[0]}:{thread_versions[1]}"
    value = rows.get(key)
    if value is None:
        value = build()
        if value is not None:
            rows.set(key, value, TIMEOUT)
    return value


@dataclass
class VisitorPage:
    key: str
    content: bytes | None

    def store(self, response: HttpResponse) -> None:
        if (
            response.status_code == 200
            and not response.cookies
            and b"csrfmiddlewaretoken" not in response.content
        ):
            pages.set(self.key, response.content, TIMEOUT)


def visitor_page(
    request: HttpRequest, *, slug: str, thread_id: int, page: int
) -> VisitorPage | None:
    """This visitor's page (``content`` None until someone renders it), or None where it
    may not be shared: a member's page, a request other than GET, a visitor with a message
    waiting to be shown, or a cache that is not answering."""
    if request.method != "GET" or request.user.is_authenticated or len(get_messages(request)):
        return None
    found = versions(thread_id)
    if found is None:
        return None
    key = f"page:thread:{slug}:{thread_id}:{page}:{found[0]}:{found[1]}"
    return VisitorPage(key=key, content=pages.get(key))
