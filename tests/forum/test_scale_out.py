"""Scale-out: two uvicorn worker processes sharing one Redis and one database.

A chat message sent on one process reaches a member connected to the other; presence
is shared; and when one process dies (SIGKILL, no goodbye), its member reconnects to
the survivor with ``?after=<last seq seen>`` and gets exactly what it missed, once
each, in order (docs/chat-protocol.md, "Delivery guarantees").

Real processes, real sockets, real Redis: PostgreSQL when DATABASE_URL points at it
(a fresh database, dropped afterwards), otherwise a SQLite file. Runs once for each
channels-redis layer (KINSHIP_CHANNEL_LAYER=core and =pubsub).
"""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from chat_fanout import PrivateRedis, free_port, wait_for_redis  # noqa: E402 (bench/, as test_delivery_faults)

IN_CI = os.environ.get("CI") == "true"
# Flushed by this test: never the one the app or other tests use, and one per pytest-xdist
# worker, so a test on another worker does not flush the groups of one running here.
SPARE_REDIS_DB = 9 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]) % 7
WAIT = 10.0  # seconds, for any single thing we wait for
HEARTBEAT = 2.0  # seconds between heartbeats on the test workers (20 in production)
# Longer than channels_redis' blocking receive (BZPOPMIN, 5 s): a room this quiet makes
# the core layer's receive wait out its whole timeout at least once.
QUIET = 6.5


def unavailable(reason: str):
    """Skip on a laptop without the service; in CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(reason + " (CI=true: not skipping)")
    pytest.skip(reason)


# --- shared services ------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url():
    import redis

    configured = os.environ.get("REDIS_URL", "")
    server = None
    if configured:
        url = urlunsplit(urlsplit(configured)._replace(path=f"/{SPARE_REDIS_DB}"))
    else:
        if shutil.which("redis-server") is None:
            unavailable("REDIS_URL is not set and redis-server is not installed")
        server = PrivateRedis()
        server.start()
        url = server.url
    if not wait_for_redis(url, WAIT):
        unavailable(f"Redis at {url} is not reachable")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.flushdb()
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
        client.close()
        if server is not None:
            server.kill()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    configured = os.environ.get("DATABASE_URL", "")
    if urlsplit(configured).scheme not in {"postgres", "postgresql", "pgsql"}:
        yield f"sqlite:///{tmp_path_factory.mktemp('scaleout') / 'db.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    name = f"kinship_scaleout_{os.getpid()}"
    admin_url = urlunsplit(urlsplit(configured)._replace(scheme="postgresql"))
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL at DATABASE_URL is not reachable: {error}")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield urlunsplit(urlsplit(configured)._replace(path=f"/{name}"))
        finally:
            admin.execute(drop)


@pytest.fixture(scope="module")
def base_env(redis_url, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_DEBUG="true",  # no secret key needed; 127.0.0.1 is an allowed host
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        KINSHIP_CHAT_HEARTBEAT_SECONDS=str(HEARTBEAT),
        # The members these workers meet are seconds old: their first messages would wait
        # for approval (moderation.trust), which is not what this test is about.
        KINSHIP_TRUST_RULES="false",
        PYTHONUNBUFFERED="1",
    )
    env.pop("KINSHIP_CHAT_RATE_LIMIT", None)
    return env


def manage(env: dict, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


SETUP = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore
from forum import memberships
from forum.models import ChatRoom, SupportGroup, User

group = SupportGroup.objects.create(
    name="Scale Out", slug="scale-out", kind=SupportGroup.Kind.MUTUAL_AID,
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
room = ChatRoom.objects.create(group=group, name="Evening", slug="evening", is_default=True)
out = {"group": group.slug, "room": room.slug, "sessions": {}}
for handle in ("alder", "birch"):
    user = User.objects.create_user(handle, handle + "@example.test", None)
    memberships.add_member(user=user, group=group)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    out["sessions"][handle] = session.session_key
print("SCALEOUT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def world(base_env):
    """Migrated database with a group, a room and two signed-in members."""
    manage(base_env, "migrate", "--noinput", "-v0")
    output = manage(base_env, "shell", "-c", SETUP, timeout=60)
    line = next(line for line in output.splitlines() if line.startswith("SCALEOUT "))
    return json.loads(line.removeprefix("SCALEOUT "))


# --- worker processes -----------------------------------------------------------------


class Worker:
    def __init__(self, name: str, env: dict, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"uvicorn-{name}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "uvicorn", "forum.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--lifespan", "off"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.origin}/healthz", timeout=2):  # noqa: S310
                    return
            except urllib.error.HTTPError as error:  # 503: up, but a service is failing
                pytest.fail(f"worker {self.name} unhealthy: {error.read()!r}\n{self.output()}")
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"worker {self.name} did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(params=["core", "pubsub"])
def layer(request) -> str:
    return request.param


@pytest.fixture
def workers(layer, base_env, world, redis_url, tmp_path):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # no presence or layer state left over from the other layer's run
    client.close()
    env = dict(base_env, KINSHIP_CHANNEL_LAYER=layer)
    started: list[Worker] = []
    try:
        for name in ("a", "b"):
            started.append(Worker(name, env, tmp_path))
        deadline = time.monotonic() + 30
        for worker in started:
            worker.wait_ready(deadline)
        yield started
    finally:
        for worker in started:
            worker.stop()


# --- a small chat client --------------------------------------------------------------


class ChatClient:
    """A websockets connection whose incoming frames are collected in order."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, worker: Worker, world: dict, handle: str, *, after: int | None = None):
        from websockets.asyncio.client import connect

        url = f"ws://127.0.0.1:{worker.port}/ws/g/{world['group']}/chat/{world['room']}/"
        if after is not None:
            url += f"?after={after}"
        ws = await connect(
            url,
            additional_headers={
                "Cookie": f"sessionid={world['sessions'][handle]}",
                "Origin": worker.origin,
            },
            open_timeout=WAIT, close_timeout=2, proxy=None,
        )  # fmt: skip
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self._arrived.set()
        except Exception:  # noqa: S110 - a killed worker resets the connection
            pass
        finally:
            self.closed.set()
            self._arrived.set()

    async def wait_for(self, what: str, predicate, timeout: float = WAIT) -> dict:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for frame in self.frames:
                        if predicate(frame):
                            return frame
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; frames: {self.frames}") from None

    async def send_message(self, body: str) -> dict:
        """Send a chat message and return its ack."""
        client_id = str(uuid.uuid4())
        await self.ws.send(json.dumps({"type": "send", "client_id": client_id, "body": body}))
        return await self.wait_for(
            f"ack of {body!r}",
            lambda f: f.get("client_id") == client_id and f["type"] in {"ack", "error"},
        )

    def messages(self) -> list[dict]:
        """Every message object received, live or in history, in arrival order."""
        found = []
        for frame in self.frames:
            if frame["type"] == "history":
                found.extend(frame["messages"])
            elif frame["type"] in {"message", "message_updated", "message_removed"}:
                found.append(frame["message"])
        return found

    def last_seen(self) -> int:
        versions = [m["version"] for m in self.messages()]
        versions += [f["version"] for f in self.frames if f["type"] == "ack"]
        return max(versions, default=0)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def received(client: ChatClient, client_id: str):
    return lambda f: f["type"] == "message" and f["message"]["client_id"] == client_id


# --- the test -------------------------------------------------------------------------


def test_chat_crosses_processes_and_survives_a_dead_worker(workers, world):
    worker_a, worker_b = workers
    asyncio.run(asyncio.wait_for(scenario(worker_a, worker_b, world), timeout=60))


async def scenario(worker_a: Worker, worker_b: Worker, world: dict) -> None:
    alder = await ChatClient.connect(worker_a, world, "alder")
    birch = await ChatClient.connect(worker_b, world, "birch")
    clients = [alder, birch]
    try:
        # Presence is shared: each process lists both members.
        for client in (alder, birch):
            await client.wait_for(
                "presence listing both members",
                lambda f: f["type"] == "presence" and f["members"] == ["alder", "birch"],
            )

        # A message sent on process A reaches the member on process B, with the acked seq.
        ack = await alder.send_message("Made it through tonight")
        assert ack["type"] == "ack", ack
        frame = await birch.wait_for("A's message on B", received(birch, ack["client_id"]))
        assert frame["message"]["seq"] == ack["seq"]
        assert frame["message"]["version"] == ack["version"]
        assert frame["message"]["author"] == "alder"
        assert "Made it through tonight" in frame["message"]["html"]

        # ... and the other way round.
        ack = await birch.send_message("Glad you are here")
        assert ack["type"] == "ack", ack
        frame = await alder.wait_for("B's message on A", received(alder, ack["client_id"]))
        assert frame["message"]["seq"] == ack["seq"]
        last_seen = alder.last_seen()
        assert last_seen == ack["version"]

        # Process A dies without a goodbye; alder's socket drops.
        worker_a.process.send_signal(signal.SIGKILL)
        worker_a.process.wait(timeout=WAIT)
        async with asyncio.timeout(WAIT):
            await alder.closed.wait()

        # Meanwhile birch keeps talking on process B.
        missed = []
        for n in range(5):
            ack = await birch.send_message(f"Still here, message {n}")
            assert ack["type"] == "ack", ack
            missed.append(ack)
        assert [a["seq"] for a in missed] == list(range(last_seen + 1, last_seen + 6))

        # alder reconnects, to the surviving process, resuming after what it saw.
        alder = await ChatClient.connect(worker_b, world, "alder", after=last_seen)
        clients.append(alder)
        history = await alder.wait_for("history after reconnect", lambda f: f["type"] == "history")
        assert [m["seq"] for m in history["messages"]] == [a["seq"] for a in missed]
        assert [m["id"] for m in history["messages"]] == [a["id"] for a in missed]
        assert [m["client_id"] for m in history["messages"]] == [a["client_id"] for a in missed]
        assert history["has_more"] is False
        assert history["latest_seq"] == missed[-1]["version"]

        # New messages still arrive live, once; nothing missed is replayed a second time.
        ack = await birch.send_message("Welcome back")
        await alder.wait_for("live message after reconnect", received(alder, ack["client_id"]))
        await asyncio.sleep(0.5)
        seqs = [m["seq"] for m in alder.messages()]
        assert seqs == [a["seq"] for a in missed] + [ack["seq"]], seqs
    finally:
        for client in clients:
            if not client.closed.is_set():
                await client.close()


def test_a_quiet_room_keeps_its_sockets(layer, workers, world):
    """Nobody says anything for a while: every socket stays open and keeps its heartbeat."""
    asyncio.run(asyncio.wait_for(quiet_room(*workers, world), timeout=60))


async def quiet_room(worker_a: Worker, worker_b: Worker, world: dict) -> None:
    alder = await ChatClient.connect(worker_a, world, "alder")
    birch = await ChatClient.connect(worker_b, world, "birch")
    try:
        for client in (alder, birch):
            await client.wait_for(
                "presence listing both members",
                lambda f: f["type"] == "presence" and f["members"] == ["alder", "birch"],
            )
        started = len(alder.frames), len(birch.frames)
        await asyncio.sleep(QUIET)
        assert not alder.closed.is_set(), f"alder's socket on A dropped: {alder.frames}"
        assert not birch.closed.is_set(), f"birch's socket on B dropped: {birch.frames}"
        for client, start in zip((alder, birch), started, strict=True):
            beats = [f for f in client.frames[start:] if f["type"] == "heartbeat"]
            assert len(beats) >= 2, client.frames[start:]

        # The room still works across processes after the quiet spell.
        ack = await alder.send_message("Is anyone still here?")
        assert ack["type"] == "ack", ack
        await birch.wait_for("A's message on B", received(birch, ack["client_id"]))
    finally:
        for client in (alder, birch):
            if not client.closed.is_set():
                await client.close()
