"""Chat delivery under faults: nothing acknowledged lost, nothing shown twice, order kept.

Members sit in several chat rooms of one group, spread over two uvicorn worker processes
that share a private redis-server (started here, on a free loopback port) and a fresh
PostgreSQL database (created on DATABASE_URL's server, dropped afterwards). Every member
sends messages with client ids while, in each cycle of ``--period`` seconds:

- a message is rolled back inside the write path: a deferred constraint trigger, installed
  in the scenario's database only, refuses it at commit (after its insert and its sequence
  number), so its transaction is rolled back and it must never be shown;
- Redis is killed (SIGKILL) and restarted on the same port 5 s later;
- one member stops reading its socket for 10 s while its room floods it with long messages
  (about 10 KB a frame), then reads again;
- one of the two workers is killed (SIGKILL); its members reconnect to the other with
  ``?after=<last seen>`` and resend what was not acknowledged (same client ids); the worker
  is started again for the next cycle.

Members behave as docs/chat-protocol.md asks of a client: they apply messages by id, resume
on a version gap or a heartbeat above what they have seen, and resend unacknowledged sends
after reconnecting. At the end everyone resumes once more, and what each member shows is
compared with the database:

- lost: acknowledged messages missing from the database or from a member of that room;
- duplicates: one client id stored (or shown) under more than one message;
- order: a sender's acknowledged messages out of send order, a history out of version
  order, a room's sequence numbers with a gap, or a member's view differing from the room;
- rolled back shown: messages whose transaction rolled back that reached anyone.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/soak.py
(``--duration`` bounds the run; see bench/README.md). tests/forum/test_delivery_faults.py
runs the same scenario, one short cycle, and asserts the figures.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_fanout import SETUP, PrivateRedis, Server, log, manage, tagged

ROLLBACK_MARK = "refused-at-commit"
# Installed in the scenario's own database: refuses a marked message when its transaction
# commits, after the row and the room's sequence number were written.
ROLLBACK_TRIGGER = f"""
CREATE FUNCTION soak_refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.source LIKE '%{ROLLBACK_MARK}%' THEN
    RAISE EXCEPTION 'soak: refused at commit' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER soak_refuse_marked AFTER INSERT ON forum_chatmessage
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION soak_refuse_marked();
"""
HEARTBEAT = 2.0  # seconds between heartbeats on the scenario's workers
SLOW_SEND_SECONDS = 3.0  # how long a worker waits on a socket that stopped reading
# A long message body for a stalled socket: each seedling is 4 bytes from the member but
# 12 in the server's frames ("\ud83c\udf31"), which carry the text twice (html and
# source): about 10 KB per frame.
FLOOD = "\U0001f331" * 400


@dataclass
class Plan:
    clients: int = 50
    rooms: int = 3
    duration: float = 30.0  # seconds of traffic
    period: float = 30.0  # one cycle of faults every so many seconds
    rate: float = 0.15  # messages per second per member
    redis_down: float = 5.0
    stall: float = 10.0  # seconds the slow member stops reading (more than SLOW_SEND_SECONDS)
    layer: str = "pubsub"
    settle: float = 30.0  # seconds allowed for the final acknowledgements and resumes


# --- services -------------------------------------------------------------------------


class Database:
    """A fresh PostgreSQL database on DATABASE_URL's server, dropped by ``drop``."""

    def __init__(self, configured: str, name: str) -> None:
        if urlsplit(configured).scheme not in {"postgres", "postgresql", "pgsql"}:
            raise RuntimeError("DATABASE_URL must point at PostgreSQL")
        # The server's maintenance database: DATABASE_URL's own may not exist yet.
        self.admin_url = urlunsplit(
            urlsplit(configured)._replace(scheme="postgresql", path="/postgres")
        )
        self.name = name
        self.url = urlunsplit(urlsplit(configured)._replace(path=f"/{name}"))

    def _admin(self, statement) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(statement)

    def create(self) -> None:
        from psycopg import sql

        self.drop()
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        from psycopg import sql

        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        self._admin(drop)

    def execute(self, statement: str, params: list | None = None) -> list[tuple]:
        import psycopg

        url = urlunsplit(urlsplit(self.url)._replace(scheme="postgresql"))
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


def worker_env(redis: PrivateRedis, database: Database, layer: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_DEBUG="true",  # loopback only: no secret key, 127.0.0.1 allowed
        DATABASE_URL=database.url,
        REDIS_URL=redis.url,
        KINSHIP_CHANNEL_LAYER=layer,
        KINSHIP_CHANNEL_PREFIX="kinship:soak",
        KINSHIP_CACHE_PREFIX="kinship-soak",
        KINSHIP_CHAT_HEARTBEAT_SECONDS=str(HEARTBEAT),
        KINSHIP_CHAT_SLOW_SEND_SECONDS=str(SLOW_SEND_SECONDS),
        KINSHIP_CHAT_RATE_LIMIT="1000/10",  # faults are the subject here, not rate limits
        KINSHIP_TRUST_RULES="false",  # members seconds old would have their first words held
        KINSHIP_CHORES_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare(database: Database, redis: PrivateRedis, plan: Plan) -> dict:
    """Migrate, create the group, its rooms and signed-in members; install the trigger."""
    env = worker_env(redis, database, plan.layer)
    rooms = [f"room-{n}" for n in range(plan.rooms)]
    env.update(BENCH_CLIENTS=str(plan.clients), BENCH_ROOMS=",".join(rooms))
    manage(env, "migrate", "--noinput", "-v0")
    world = json.loads(tagged(manage(env, "shell", "-c", SETUP, timeout=120), "BENCH"))
    world["rooms"] = rooms
    database.execute(ROLLBACK_TRIGGER)
    return world


# --- members --------------------------------------------------------------------------


@dataclass
class Member:
    index: int
    session: str
    room: str
    home: int  # the worker it prefers
    slow: bool = False
    ws: object = None
    shown: dict[int, dict] = field(default_factory=dict)  # message id -> message
    last_seen: int = 0  # every version up to here is applied
    resuming: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[str, str] = field(default_factory=dict)  # client id -> body, unacknowledged
    tries: Counter = field(default_factory=Counter)  # client id -> refusals so far
    sent_order: list[str] = field(default_factory=list)
    acked: dict[str, dict] = field(default_factory=dict)  # client id -> ack
    refused: set[str] = field(default_factory=set)
    errors: Counter = field(default_factory=Counter)
    closes: Counter = field(default_factory=Counter)
    history_out_of_order: int = 0
    redelivered: int = 0
    early: int = 0  # live messages that arrived before a lower version (a gap, then resume)
    beats: list[float] = field(default_factory=list)
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str = ""  # why the last connection attempt failed
    last_frame: float = 0.0


class Scenario:
    def __init__(self, plan: Plan, world: dict, workers: list[Server], env: dict, tmp: Path):
        self.plan, self.world, self.workers, self.env, self.tmp = plan, world, workers, env, tmp
        rooms = world["rooms"]
        self.members = [
            Member(index=n, session=session, room=rooms[n % len(rooms)], home=(n // len(rooms)) % 2)
            for n, session in enumerate(world["sessions"][: plan.clients])
        ]
        # The slow member sits on worker 1 (never the one killed), so its close is the
        # worker's doing.
        slow = next(m for m in self.members if m.home == 1 and m.room == rooms[0])
        slow.slow = True
        self.sending = True
        self.flooding: str | None = None
        self.faults: Counter = Counter()
        self.rolled_back: set[str] = set()
        self.tasks: list[asyncio.Task] = []

    # --- connections ---------------------------------------------------------------

    async def connect(self, member: Member) -> None:
        from websockets.asyncio.client import connect

        order = [member.home, 1 - member.home]
        attempt = 0
        while True:
            worker = self.workers[order[attempt % 2]]
            url = (f"ws://127.0.0.1:{worker.port}/ws/g/{self.world['group']}/chat/"
                   f"{member.room}/?after={member.last_seen}")  # fmt: skip
            options = {}
            if member.slow:  # a small receive window: a stalled reader backs up quickly
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(2)
                try:
                    sock.connect(("127.0.0.1", worker.port))
                except OSError:
                    sock.close()
                    attempt += 1
                    await asyncio.sleep(0.3)
                    continue
                sock.setblocking(False)
                options = {"sock": sock, "max_queue": 1}
            try:
                member.ws = await connect(
                    url,
                    additional_headers={
                        "Cookie": f"sessionid={member.session}",
                        "Origin": f"http://127.0.0.1:{worker.port}",
                    },
                    open_timeout=5, close_timeout=1, proxy=None, max_size=2**24, **options,
                )  # fmt: skip
                member.resuming = True  # the first frame is the history after last_seen
                member.connected.set()
                return
            except (
                Exception
            ) as error:  # refused, reset or timed out: the other worker, after a pause
                member.failure = f"{type(error).__name__}: {error}"
                attempt += 1
                await asyncio.sleep(min(2.0, 0.2 * attempt))

    async def run_member(self, member: Member) -> None:
        member.reading.set()
        while True:
            await self.connect(member)
            try:
                while True:
                    await member.reading.wait()
                    raw = await member.ws.recv()
                    member.last_frame = time.monotonic()
                    await self.on_frame(member, json.loads(raw))
            except Exception:  # the socket closed: note why, reconnect and resume
                code = getattr(member.ws, "close_code", None)
                member.closes[code] += 1
            member.connected.clear()
            member.settled.clear()
            await asyncio.sleep(random.uniform(0.1, 0.5))  # noqa: S311 - jitter

    async def send(self, member: Member, frame: dict) -> None:
        if member.connected.is_set():
            # A closed socket: the reconnect resends what is pending.
            with contextlib.suppress(Exception):
                await member.ws.send(json.dumps(frame, ensure_ascii=False))

    async def resume(self, member: Member) -> None:
        if not member.resuming:
            member.resuming = True
            await self.send(member, {"type": "resume", "after": member.last_seen})

    # --- frames --------------------------------------------------------------------

    def apply(self, member: Member, message: dict) -> None:
        if message["id"] in member.shown and member.shown[message["id"]] == message:
            member.redelivered += 1
        member.shown[message["id"]] = message

    async def on_frame(self, member: Member, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "history":
            versions = [m["version"] for m in frame["messages"]]
            if versions != sorted(set(versions)):
                member.history_out_of_order += 1
            for message in frame["messages"]:
                self.apply(member, message)
            if frame["has_more"] and versions:
                member.last_seen = max(member.last_seen, versions[-1])
                await self.send(member, {"type": "resume", "after": member.last_seen})
                return
            member.last_seen = max([member.last_seen, *versions])
            member.resuming = False
            member.settled.set()
            # Sends the last socket did not see acknowledged go again, with their client ids.
            for client_id, body in list(member.pending.items()):
                await self.send(member, {"type": "send", "client_id": client_id, "body": body})
        elif kind == "message":
            message = frame["message"]
            self.apply(member, message)
            if message["version"] == member.last_seen + 1 and not member.resuming:
                member.last_seen = message["version"]
            elif message["version"] > member.last_seen + 1:
                member.early += 1
                await self.resume(member)
        elif kind == "heartbeat":
            member.beats.append(time.monotonic())
            if frame["latest_seq"] > member.last_seen:
                await self.resume(member)
        elif kind == "ack":
            member.acked[frame["client_id"]] = frame
            member.pending.pop(frame["client_id"], None)
        elif kind == "error":
            member.errors[frame.get("code")] += 1
            client_id = frame.get("client_id")
            if client_id in member.pending:
                member.tries[client_id] += 1
                if member.tries[client_id] >= 3 or frame.get("code") == "invalid":
                    member.pending.pop(client_id)
                    member.refused.add(client_id)
                    return
                wait = float(frame.get("retry_after") or 1)
                body = member.pending[client_id]
                self.later(wait, self.send(member, {"type": "send", "client_id": client_id,
                                                    "body": body}))  # fmt: skip

    def later(self, delay: float, coroutine) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await coroutine

        self.tasks.append(asyncio.get_running_loop().create_task(run()))

    # --- traffic -------------------------------------------------------------------

    async def talk(self, member: Member) -> None:
        number = 0
        await asyncio.sleep(random.uniform(0, 1 / self.plan.rate))  # noqa: S311
        while self.sending:
            flooding = self.flooding == member.room and not member.slow
            body = f"member {member.index} says {number}"
            if flooding:
                body += " " + FLOOD
                self.faults["flood messages"] += 1
            await self.post(member, body)
            number += 1
            pause = 1.0 if flooding else 1 / self.plan.rate
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311

    async def post(self, member: Member, body: str) -> str:
        client_id = str(uuid.uuid4())
        member.pending[client_id] = body
        member.sent_order.append(client_id)
        if member.settled.is_set():  # otherwise it goes after the older ones, on reconnect
            await self.send(member, {"type": "send", "client_id": client_id, "body": body})
        return client_id

    # --- faults --------------------------------------------------------------------

    async def roll_back(self) -> None:
        for member in self.members[: self.plan.rooms]:  # one in each room
            client_id = await self.post(member, f"member {member.index}: {ROLLBACK_MARK}")
            self.rolled_back.add(client_id)
        self.faults["rolled back"] += self.plan.rooms

    async def redis_outage(self, redis: PrivateRedis) -> None:
        redis.kill()
        self.faults["redis restarts"] += 1
        await asyncio.sleep(self.plan.redis_down)
        await asyncio.to_thread(redis.start)

    async def stall(self) -> None:
        slow = next(m for m in self.members if m.slow)
        slow.reading.clear()
        self.flooding = slow.room
        await asyncio.sleep(self.plan.stall)
        self.flooding = None
        slow.reading.set()
        self.faults["stalls"] += 1
        await asyncio.sleep(1.0)

    async def kill_worker(self) -> None:
        worker = self.workers[0]
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)
        self.faults["workers killed"] += 1

    async def restart_worker(self) -> None:
        old = self.workers[0]
        old.log.close()
        fresh = Server.uvicorn(f"worker-a{self.faults['workers killed']}", self.env, self.tmp)
        await asyncio.to_thread(fresh.wait_ready, http=True)
        self.workers[0] = fresh

    async def cycle(self, redis: PrivateRedis, *, last: bool) -> None:
        started = time.monotonic()
        await asyncio.sleep(2.0)
        await self.roll_back()
        await asyncio.sleep(1.0)
        await self.redis_outage(redis)
        await asyncio.sleep(3.0)
        await self.stall()
        await self.kill_worker()  # traffic goes on: its members miss some, then resume
        if not last:
            await asyncio.sleep(3.0)
            await self.restart_worker()
            await asyncio.sleep(max(0.0, self.plan.period - (time.monotonic() - started)))

    # --- the run -------------------------------------------------------------------

    async def run(self, redis: PrivateRedis) -> dict:
        loop = asyncio.get_running_loop()
        readers = [loop.create_task(self.run_member(m)) for m in self.members]
        await asyncio.wait_for(
            asyncio.gather(*(m.settled.wait() for m in self.members)), timeout=60
        )
        talkers = [loop.create_task(self.talk(m)) for m in self.members]
        started = time.monotonic()
        cycles = max(1, round(self.plan.duration / self.plan.period))
        for n in range(cycles):
            await self.cycle(redis, last=n == cycles - 1)
        await asyncio.sleep(max(0.0, self.plan.duration - (time.monotonic() - started)))
        self.sending = False
        await asyncio.gather(*talkers)
        await self.settle()
        for task in [*readers, *self.tasks]:
            task.cancel()
        for member in self.members:
            if member.ws is not None:
                await member.ws.close()
        return {"seconds": round(time.monotonic() - started, 1)}

    async def settle(self) -> None:
        """Every send answered, then every member resumed once more and up to date."""
        deadline = time.monotonic() + self.plan.settle
        while time.monotonic() < deadline and any(m.pending for m in self.members):
            await asyncio.sleep(0.2)
        for member in self.members:
            await member.connected.wait()
            member.settled.clear()
            member.resuming = False
            await self.resume(member)
        left = max(1.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(
                asyncio.gather(*(m.settled.wait() for m in self.members)), timeout=left
            )
        except TimeoutError:
            for member in self.members:
                if not member.settled.is_set():
                    log(
                        f"  member {member.index} did not settle: connected="
                        f"{member.connected.is_set()} resuming={member.resuming} "
                        f"pending={len(member.pending)} last_seen={member.last_seen} "
                        f"closes={dict(member.closes)} {member.failure} "
                        f"quiet for {time.monotonic() - member.last_frame:.1f} s"
                    )

    # --- figures -------------------------------------------------------------------

    def figures(self, database: Database) -> dict:
        rows = database.execute(
            "SELECT r.slug, m.id, m.seq, m.client_id, m.author_id FROM forum_chatmessage m "
            "JOIN forum_chatroom r ON r.id = m.room_id WHERE r.slug = ANY(%s) "
            "ORDER BY r.slug, m.seq",
            [self.world["rooms"]],
        )
        stored = {client_id: (slug, pk, seq) for slug, pk, seq, client_id, _ in rows}
        by_room: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for slug, pk, seq, _, _ in rows:
            by_room[slug].append((seq, pk))
        acked = {cid: (m.room, ack) for m in self.members for cid, ack in m.acked.items()}
        lost = sum(cid not in stored for cid in acked)
        for member in self.members:
            shown_ids = set(member.shown)
            for _cid, (room, ack) in acked.items():
                if room == member.room and ack["id"] not in shown_ids:
                    lost += 1
        duplicates = len(rows) - len(stored)
        for member in self.members:
            counts = Counter(m["client_id"] for m in member.shown.values())
            duplicates += sum(n - 1 for n in counts.values() if n > 1)
        order = sum(m.history_out_of_order for m in self.members)
        for seqs in by_room.values():
            order += [s for s, _ in seqs] != list(range(1, len(seqs) + 1))
        for member in self.members:
            acked_seqs = [member.acked[c]["seq"] for c in member.sent_order if c in member.acked]
            order += acked_seqs != sorted(acked_seqs)
            view = [pk for _, pk in sorted((m["seq"], m["id"]) for m in member.shown.values())]
            order += view != [pk for _, pk in by_room[member.room]]
        rolled_back_shown = sum(cid in stored for cid in self.rolled_back)
        rolled_back_shown += sum(
            m["client_id"] in self.rolled_back for member in self.members
            for m in member.shown.values()
        )  # fmt: skip
        refused_rollbacks = sum(
            cid in member.refused for member in self.members for cid in self.rolled_back
        )
        gaps = []
        for member in self.members:  # those on the stalled member's worker throughout
            if not member.slow and not member.closes and len(member.beats) > 1:
                gaps.append(max(b - a for a, b in itertools.pairwise(member.beats)))
        closes: Counter = Counter()
        errors: Counter = Counter()
        for member in self.members:
            closes.update(member.closes)
            errors.update(member.errors)
        return {
            "clients": len(self.members),
            "rooms": self.plan.rooms,
            "layer": self.plan.layer,
            "stored": len(rows),
            "acknowledged": len(acked),
            "lost": lost,
            "duplicates": duplicates,
            "order_violations": order,
            "rolled_back_shown": rolled_back_shown,
            "rolled_back_refused": refused_rollbacks,
            "faults": dict(self.faults),
            "reconnects": sum(closes.values()),
            "close_codes": {str(code): n for code, n in sorted(closes.items(), key=str)},
            "errors": dict(errors),
            "early_live_messages": sum(m.early for m in self.members),
            "redelivered": sum(m.redelivered for m in self.members),
            "max_heartbeat_gap": round(max(gaps, default=0.0), 1),
            # The worker gave up on the stalled socket (1013) rather than buffer for it.
            "slow_member_closed": next(m for m in self.members if m.slow).closes.get(1013, 0),
            "unsettled": sum(not m.settled.is_set() for m in self.members),
            "unacknowledged": sum(len(m.pending) for m in self.members),
        }


def run(plan: Plan, *, database_url: str, tmp: Path) -> dict:
    """Start the services, run the scenario, remove everything; return the figures."""
    redis = PrivateRedis()
    database = Database(database_url, f"kinship_soak_{os.getpid()}")
    workers: list[Server] = []
    try:
        redis.start()
        database.create()
        log(f"preparing {plan.clients} members in {plan.rooms} rooms")
        world = prepare(database, redis, plan)
        env = worker_env(redis, database, plan.layer)
        workers = [Server.uvicorn("worker-a", env, tmp), Server.uvicorn("worker-b", env, tmp)]
        for worker in workers:
            worker.wait_ready(http=True)
        scenario = Scenario(plan, world, workers, env, tmp)
        log(f"running {plan.duration:.0f} s of traffic on the {plan.layer} layer, with faults")
        result = asyncio.run(scenario.run(redis))
        result.update(scenario.figures(database))
        return result
    finally:
        for worker in workers:
            worker.stop()
        redis.kill()
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=150)
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--duration", type=float, default=300, help="seconds of traffic")
    parser.add_argument("--period", type=float, default=60, help="seconds per fault cycle")
    parser.add_argument("--rate", type=float, default=0.2, help="messages/s per member")
    parser.add_argument("--layer", choices=["core", "pubsub"], default="pubsub")
    args = parser.parse_args()
    configured = os.environ.get("DATABASE_URL", "")
    if urlsplit(configured).scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit("soak: set DATABASE_URL to a PostgreSQL server (a fresh database is made on it)")
    plan = Plan(
        clients=args.clients, rooms=args.rooms, duration=args.duration, period=args.period,
        rate=args.rate, layer=args.layer, settle=60,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kinship-soak-") as tmp:
        figures = run(plan, database_url=configured, tmp=Path(tmp))
    print(json.dumps(figures, indent=2))
    bad = figures["lost"] + figures["duplicates"] + figures["order_violations"]
    sys.exit(1 if bad + figures["rolled_back_shown"] else 0)


if __name__ == "__main__":
    main()
