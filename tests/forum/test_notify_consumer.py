"""The notifications socket (forum/notify_consumer.py, docs/chat-protocol.md): a signed-in
member's pages hear their unread count change, and nothing else; anonymous visitors are
refused; logging out or closing the account closes it within seconds.

Through the real ASGI stack (origin check, session cookie, URL router), with real commits
so the count is sent when the notification's transaction commits.
"""

import asyncio
import time

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from forum import engagement, notify, notify_consumer
from forum.models import Notification, User
from tests.chat_helpers import ChatSocket, db, login_session, run_async, session_store
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/notifications/"
RECHECK = 0.2
REVOKED_WITHIN = 5.0
Kind = Notification.Kind


@pytest.fixture
def quick_recheck(settings):
    settings.KINSHIP_CHAT_RECHECK_SECONDS = RECHECK


@pytest.fixture
def river(db) -> User:
    return make_user("river")


async def connect(user: User | None = None, *, session_key: str | None = None) -> ChatSocket:
    if session_key is None and user is not None:
        session_key = await db(login_session, user)
    socket = ChatSocket(PATH, session_key=session_key)
    connected, detail = await socket.connect()
    assert connected, f"handshake refused with {detail}"
    return socket


async def stop_watch() -> None:
    # Like tests/chat_helpers' chat watch: end it while this thread still serves the ORM.
    task = notify_consumer.watch().task
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def run(scenario) -> None:
    async def main():
        try:
            await scenario()
        finally:
            await stop_watch()

    run_async(main)


def test_anonymous_visitors_and_made_up_sessions_are_refused_with_4401(db):
    async def scenario():
        for key in (None, "no-such-session-key-0123456789"):
            socket = ChatSocket(PATH, session_key=key)
            assert await socket.connect() == (False, 4401)

    run(scenario)


def test_a_foreign_origin_is_refused(river):
    async def scenario():
        key = await db(login_session, river)
        socket = ChatSocket(PATH, session_key=key, origin="https://evil.example")
        connected, _ = await socket.connect()
        assert not connected

    run(scenario)


def test_the_count_on_connect_then_every_change_and_only_the_count(river):
    meadow = make_user("meadow")
    notify.notify(recipient=river, kind=Kind.MODERATION, text="removed your post")

    async def scenario():
        mine, theirs = await connect(river), await connect(meadow)
        assert await mine.next() == {"type": "unread", "count": 1}
        assert await theirs.next() == {"type": "unread", "count": 0}
        await db(notify.notify, recipient=river, kind=Kind.MENTION, actor=meadow)
        assert await mine.next() == {"type": "unread", "count": 2}
        await db(engagement.mark_notifications_read, user=river)
        assert await mine.next() == {"type": "unread", "count": 0}
        await theirs.quiet(0.3, ignore=())  # someone else's notifications ring no bell here
        await mine.disconnect()
        await theirs.disconnect()

    run(scenario)


def test_a_kind_switched_off_rings_no_bell(river):
    notify.set_preferences(user=river, choices={"replies_in_app": False}, digest_frequency="off")

    async def scenario():
        socket = await connect(river)
        assert await socket.next() == {"type": "unread", "count": 0}
        await db(notify.notify, recipient=river, kind=Kind.REPLY)
        await socket.quiet(0.3, ignore=())
        await socket.disconnect()

    run(scenario)


def test_ping_sync_and_nonsense(river, monkeypatch):
    monkeypatch.setattr(notify_consumer, "SYNC_INTERVAL", 0.0)

    async def scenario():
        socket = await connect(river)
        await socket.next()
        for junk in ("not json", "[1, 2]", '{"type": "subscribe", "user": 1}', "{}"):
            await socket.send_text(junk)
        await socket.quiet(0.2, ignore=())
        await socket.send({"type": "ping"})
        assert await socket.next() == {"type": "pong"}
        await db(Notification.objects.create, recipient=river, kind=Kind.MENTION)  # no ring
        await socket.send({"type": "sync"})
        assert await socket.next() == {"type": "unread", "count": 1}
        await socket.disconnect()

    run(scenario)


def test_sync_is_answered_at_most_every_few_seconds(river):
    async def scenario():
        socket = await connect(river)
        await socket.next()
        await socket.send({"type": "sync"})  # just connected: the count was just sent
        await socket.quiet(0.2, ignore=())
        await socket.disconnect()

    run(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_logging_out_elsewhere_closes_the_socket_with_4401(river):
    key = login_session(river)

    def log_out_in_a_browser():
        browser = Client()
        browser.cookies[django_settings.SESSION_COOKIE_NAME] = key
        assert browser.post(reverse("logout")).status_code == 302
        assert not session_store().exists(key)

    async def scenario():
        socket = await connect(session_key=key)
        await socket.next()
        started = time.monotonic()
        await db(log_out_in_a_browser)
        assert await socket.closed(timeout=REVOKED_WITHIN) == 4401
        assert time.monotonic() - started < REVOKED_WITHIN
        await socket.disconnect()

    run(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_a_closed_account_closes_the_socket_with_4403(river):
    def deactivate():
        river.is_active = False
        river.save(update_fields=["is_active"])

    async def scenario():
        socket = await connect(river)
        await socket.next()
        await db(deactivate)
        assert await socket.closed(timeout=REVOKED_WITHIN) == 4403
        await socket.disconnect()

    run(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_an_expired_session_closes_the_socket_with_4401(river):
    key = login_session(river)
    session = session_store(key)
    session.set_expiry(2)
    session.save()

    async def scenario():
        socket = await connect(session_key=key)
        await socket.next()
        assert await socket.closed(timeout=2 + REVOKED_WITHIN) == 4401
        await socket.disconnect()

    run(scenario)


@pytest.mark.usefixtures("quick_recheck")
def test_an_unrelated_change_keeps_the_socket_open(river):
    def rename_nothing():
        river.save(update_fields=["bio_source"])  # bumps the epoch; nothing is revoked

    async def scenario():
        socket = await connect(river)
        await socket.next()
        await db(rename_nothing)
        await socket.quiet(RECHECK * 4, ignore=())
        await db(notify.notify, recipient=river, kind=Kind.MENTION)
        assert await socket.next() == {"type": "unread", "count": 1}
        await socket.disconnect()

    run(scenario)


@pytest.mark.parametrize("failing", ["new_channel", "group_add", "authority_epochs"])
def test_with_redis_unreachable_the_handshake_says_try_again_later(
    river, monkeypatch, caplog, failing
):
    from channels.layers import get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    from forum import realtime

    def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    async def down_async(*args, **kwargs):
        down()

    async def scenario():
        layer = get_channel_layer()  # this loop's own (tests/chat_helpers.run_async)
        if failing in ("new_channel", "group_add"):
            # new_channel: the pub/sub layer subscribes as Channels starts the consumer.
            monkeypatch.setattr(layer, failing, down_async)
        else:
            monkeypatch.setattr(realtime, "authority_epochs", down)
        monkeypatch.setattr(layer, "group_discard", down_async)
        socket = await connect(river)  # accepted, so the browser sees the close code
        assert await socket.closed() == 1013  # the page's script retries after a pause

    run(scenario)
    assert [r.levelname for r in caplog.records if r.name.startswith("forum.")] == ["WARNING"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
