"""ASGI entry point: pages over HTTP, chat over WebSockets."""

import asyncio
import logging
import os
import weakref

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")

# Initialise Django (apps, models) before importing anything that uses them.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from . import heap, live, notify, privacy, publishing  # noqa: E402
from .consumers import SERVER_SEND  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402

logger = logging.getLogger(__name__)


def keep_server_send(app):
    """Puts the server's own send in the scope: forum.fanout writes room broadcasts with it,
    past the session middleware's send, which does nothing for a websocket frame."""

    async def with_server_send(scope, receive, send) -> None:
        await app({**scope, SERVER_SEND: send}, receive, send)

    return with_server_send


router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": keep_server_send(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Work that falls due with time, without any cron: held posts ("hold my post for an hour")
# go out, live sessions nobody ended are finished (their transcript choice applied), and
# expired sessions and old notifications are purged (forum.privacy, hourly).
# Every worker process runs one small loop that each KINSHIP_CHORES_SECONDS calls
# publishing.release_due_posts and live.sweep_sessions (both take rows FOR UPDATE SKIP
# LOCKED or under the session's lock, so any number of workers share the work and none
# does it twice). It starts with the first connection the process serves, whatever its
# kind: an import-time start has no running event loop yet, and `make run` turns the
# lifespan protocol off. forum.watch's loop is no home for it, as that one only runs while
# chat sockets are open. It runs off the event loop's thread and outside the
# thread-sensitive executor, so a long round delays no page and no socket. WSGI-only
# deploys run the release_held_posts and sweep_sessions commands from cron
# (docs/operations.md), and a member's own page views release their due posts in any case.
_chore_tasks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def run_chores() -> None:
    """One round, in a thread of its own: each chore's fault is its own, and the thread's
    connection is closed after, so the pool's threads hold no idle connections."""
    try:
        for chore in (
            publishing.release_due_posts,
            live.sweep_sessions,
            notify.send_session_reminders,
            privacy.purge_expired_data_when_due,
        ):
            try:
                chore()
            except Exception:  # a passing database fault: the next round tries again
                logger.warning("periodic chore %s failed", chore.__name__, exc_info=True)
    finally:
        connection.close()


async def run_chores_forever() -> None:
    chores = database_sync_to_async(run_chores, thread_sensitive=False)
    while True:
        await asyncio.sleep(settings.KINSHIP_CHORES_SECONDS)
        await chores()


def start_periodic_chores() -> None:
    """Start this event loop's chores loop unless it runs already (or is switched off)."""
    if settings.KINSHIP_CHORES_SECONDS <= 0:
        return
    loop = asyncio.get_running_loop()
    task = _chore_tasks.get(loop)
    if task is None or task.done():
        _chore_tasks[loop] = loop.create_task(run_chores_forever())


heap.freeze_after_first_request()


async def application(scope, receive, send) -> None:
    start_periodic_chores()
    await router(scope, receive, send)
