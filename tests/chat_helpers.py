"""Helpers for tests that talk to the chat WebSocket (docs/chat-protocol.md).

The chat socket is authenticated by the Django session cookie and origin-checked,
exactly as a browser's would be. These helpers build both parts for a real member:

- ``login_session(user)`` stores a real signed-in session (the configured engine,
  cached_db) and returns its key; ``cookie_header(key)`` is the Cookie header value,
  ``browser_cookie(key, url)`` the same for Playwright's ``context.add_cookies``;
- ``handshake_headers(...)`` the Origin, Host and Cookie headers of a handshake,
  usable by any WebSocket client (channels' communicator, ``websockets``, ...);
- ``ChatSocket`` wraps channels' ``WebsocketCommunicator`` around the real ASGI
  stack (``forum.asgi.application``: AllowedHostsOriginValidator, AuthMiddlewareStack,
  the URL router) and reads frames without cancelling the application on a timeout;
- ``run_async(fn)`` runs a test's coroutine from a synchronous test (the suite has no
  pytest-asyncio): the event loop runs in a helper thread and ORM calls made through
  ``database_sync_to_async``/``db`` run back in the test's own thread and connection.

Tests that use sockets need ``@pytest.mark.django_db(transaction=True)``: broadcasts
happen when the write path's transaction commits.
"""

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connections

# Imported now, not by the first socket a test opens: its django.setup() configures logging
# again, which would drop the handler pytest's caplog installed for that test.
from forum.asgi import application as asgi_application

DEFAULT_ORIGIN = "http://127.0.0.1"
DEFAULT_HOST = "127.0.0.1"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# Frames that arrive on their own schedule; ``ChatSocket.expect`` passes over them.
AMBIENT = frozenset({"presence", "heartbeat", "typing"})


# --- sessions and handshake headers ---------------------------------------------------


def session_store(session_key: str | None = None):
    """A SessionStore of the configured engine (cached_db)."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def login_session(user, *, backend: str = MODEL_BACKEND) -> str:
    """Sign ``user`` in as django.contrib.auth.login would; return the session key."""
    session = session_store()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


def cookie_header(session_key: str) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={session_key}"


def browser_cookie(session_key: str, url: str) -> dict[str, Any]:
    """The session cookie for Playwright's ``BrowserContext.add_cookies``."""
    return {"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": url}


def handshake_headers(
    *,
    session_key: str | None = None,
    origin: str | None = DEFAULT_ORIGIN,
    host: str | None = DEFAULT_HOST,
    extra: Iterable[tuple[str, str]] = (),
) -> list[tuple[bytes, bytes]]:
    """ASGI-style headers for a handshake; ``origin=None`` sends no Origin header."""
    headers: list[tuple[str, str]] = []
    if host is not None:
        headers.append(("host", host))
    if origin is not None:
        headers.append(("origin", origin))
    if session_key is not None:
        headers.append(("cookie", cookie_header(session_key)))
    headers.extend(extra)
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def room_path(room, *, after: int | None = None, query: str = "") -> str:
    """The socket path of a room (``?after=`` to resume)."""
    path = f"/ws/g/{room.group.slug}/chat/{room.slug}/"
    parts = [f"after={after}"] if after is not None else []
    if query:
        parts.append(query)
    return path + (f"?{'&'.join(parts)}" if parts else "")


def live_ws_url(live_server_url: str, room, *, after: int | None = None) -> str:
    """``ws://host:port/ws/g/.../`` for a socket to a live server (two-process tests)."""
    scheme = "wss" if urlsplit(live_server_url).scheme == "https" else "ws"
    return f"{scheme}://{urlsplit(live_server_url).netloc}{room_path(room, after=after)}"


# --- running coroutines from synchronous tests ------------------------------------------


def run_async(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``fn()`` to the end in a fresh event loop; ORM work inside it goes through
    ``db(...)`` (or ``database_sync_to_async``) and lands in the calling thread.

    Like a worker process of its own, the loop gets its own channel layer: a layer
    instance keeps per-loop receive state (channels_redis) that must not outlive it.
    """

    async def main():
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
        try:
            return await fn()
        finally:
            await _stop_chat_watch()
            _end_writers()
            if hasattr(layer, "close_pools"):
                await layer.close_pools()
            if previous is None:
                channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
            else:
                channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)

    return async_to_sync(main)()


async def _stop_chat_watch() -> None:
    # The per-loop watchers of forum.watch and forum.notify_consumer (notification and
    # review-queue sockets) end by themselves once their sockets are gone; stop them now,
    # while this thread still serves their database calls.
    from forum import fanout, notify_consumer
    from forum.watch import watch

    for task in (watch().task, notify_consumer.watch().task, *fanout.relay().stop()):
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _end_writers() -> None:
    # A worker's writer threads (forum.consumers) keep a database connection each; their
    # end closes them, so no test leaves a session open on the test database.
    from forum import consumers

    if not consumers._writers.cache_info().currsize:
        return
    writers = consumers._writers()
    count = writers._max_workers
    # One call per thread, each held at the barrier until all have theirs.
    everyone = threading.Barrier(count)

    def close() -> None:
        everyone.wait(timeout=5)
        connections.close_all()

    for _ in range(count):
        writers.submit(close)
    writers.shutdown(wait=True)
    consumers._writers.cache_clear()


async def db(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run a synchronous ORM function from a coroutine."""
    return await database_sync_to_async(fn)(*args, **kwargs)


# --- the socket -----------------------------------------------------------------------


class ChatSocket:
    """One chat connection through the real ASGI stack.

    ``frames`` keeps every frame received, in order, for assertions after the fact.
    """

    def __init__(
        self,
        path: str,
        *,
        session_key: str | None = None,
        origin: str | None = DEFAULT_ORIGIN,
        host: str | None = DEFAULT_HOST,
        application=None,
    ) -> None:
        if application is None:
            application = asgi_application
        self.comm = WebsocketCommunicator(
            application,
            path,
            headers=handshake_headers(session_key=session_key, origin=origin, host=host),
        )
        self.frames: list[dict] = []
        self.accepted = False
        self.close_code: int | None = None

    async def connect(self, timeout: float = 3) -> tuple[bool, Any]:
        connected, detail = await self.comm.connect(timeout)
        self.accepted = connected
        if not connected:
            self.close_code = detail
        return connected, detail

    # sending

    async def send(self, frame: dict) -> None:
        """Send a frame as a browser's JSON.stringify would: UTF-8, not \\u escapes."""
        await self.comm.send_to(text_data=json.dumps(frame, ensure_ascii=False))

    async def send_text(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def send_bytes(self, data: bytes) -> None:
        await self.comm.send_to(bytes_data=data)

    # receiving

    async def output(self, timeout: float = 3) -> dict:
        """The next raw ASGI message from the application (a send or a close).

        Unlike the communicator's own receive, a timeout leaves the application running.
        """
        queue, future = self.comm.output_queue, self.comm.future
        if not queue.empty():
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait(
            {getter, future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        await asyncio.gather(getter, return_exceptions=True)
        if not getter.cancelled():  # a message arrived as the wait ended
            return getter.result()
        if future.done():
            future.result()  # raise what the consumer raised
            raise AssertionError("the application ended without a word")
        raise TimeoutError

    async def next(self, timeout: float = 3) -> dict:
        """The next frame, decoded; fails if the socket closes instead."""
        message = await self.output(timeout)
        assert message["type"] == "websocket.send", f"expected a frame, got {message}"
        assert "text" in message and message["text"] is not None, f"not a text frame: {message}"
        frame = json.loads(message["text"])
        self.frames.append(frame)
        return frame

    async def expect(
        self, kind: str, *, timeout: float = 3, skip: Iterable[str] = AMBIENT, **fields
    ) -> dict:
        """The next frame of type ``kind`` (with ``fields`` equal to the given values),
        passing over frames whose type is in ``skip``; any other frame fails the test."""
        skip = set(skip)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                frame = await self.next(max(remaining, 0.001))
            except TimeoutError:
                raise AssertionError(
                    f"no {kind!r} frame{f' with {fields}' if fields else ''} within {timeout}s; "
                    f"received so far: {self.frames}"
                ) from None
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame
            if frame.get("type") not in skip:
                raise AssertionError(f"expected a {kind!r} frame {fields or ''}, got {frame}")

    async def collect(self, seconds: float) -> list[dict]:
        """Every frame that arrives within ``seconds``."""
        got: list[dict] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got.append(await self.next(remaining))
            except TimeoutError:
                break
        return got

    async def quiet(self, seconds: float = 0.3, *, ignore: Iterable[str] = AMBIENT) -> None:
        """Assert that nothing but ``ignore``-d frames arrives within ``seconds``."""
        ignore = set(ignore)
        extra = [frame for frame in await self.collect(seconds) if frame["type"] not in ignore]
        assert extra == [], f"unexpected frames: {extra}"

    async def closed(self, timeout: float = 3) -> int:
        """Wait for the server to close the socket (passing over frames); the close code."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = await self.output(max(remaining, 0.001))
            except TimeoutError:
                raise AssertionError(
                    f"the socket was not closed within {timeout}s; frames: {self.frames}"
                ) from None
            if message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)
                return self.close_code
            if message.get("text") is not None:
                self.frames.append(json.loads(message["text"]))

    async def disconnect(self, code: int = 1000) -> None:
        """Close from the client side and let the consumer finish (idempotent)."""
        future = self.comm.future
        if not future.done():
            await self.comm.send_input({"type": "websocket.disconnect", "code": code})
        await self.comm.wait(3)

    async def __aenter__(self) -> "ChatSocket":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.disconnect()


async def open_socket(room, user=None, *, after: int | None = None, **kwargs) -> ChatSocket:
    """A connected, accepted socket of ``user`` to ``room`` (signed in with a fresh
    session); fails the test if the handshake is refused."""
    session_key = kwargs.pop("session_key", None)
    if session_key is None and user is not None:
        session_key = await db(login_session, user)
    socket = ChatSocket(room_path(room, after=after), session_key=session_key, **kwargs)
    connected, detail = await socket.connect()
    assert connected, f"handshake refused with {detail}"
    return socket


def broadcast_frame(event: dict) -> dict:
    """The frame a room broadcast carries, as JSON (forum.realtime.chat_event) or as is."""
    return json.loads(event["text"]) if "text" in event else event["frame"]
