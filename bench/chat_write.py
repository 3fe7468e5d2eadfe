"""What one chat message costs to store, in process: the worker's CPU, PostgreSQL's, and
the statements sent.

One run: a fresh PostgreSQL database on the server DATABASE_URL names and a private
redis-server (bench/pages.py's helpers), production settings. A child process inside
Django sends N messages through the chat consumer's write path (the member and the room
read afresh, then forum.publishing.publish_chat_message), as an established member who
has already written --history messages, connections checked before each write as
Channels does. The broadcast after commit is handed to nobody (a worker hands it to its
event loop, which bench/chat_fanout.py measures). PostgreSQL's CPU is read from /proc
for the connection's server process, so the server must run on this machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \\
        bench/chat_write.py --messages 2000

See bench/README.md ("Latest runs: a chat message").
"""

import argparse
import cProfile
import inspect
import json
import os
import pstats
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages import app_env, fresh_database, log, manage, measure_in_child, private_redis

WARM = 50  # messages sent before measuring: the worker compiles its rules, PostgreSQL
# prepares the statements


def backend_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # PostgreSQL on another machine
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(messages: int, history: int, profile: str) -> dict:
    """In the child: per message, CPU and wall time, PostgreSQL's CPU, statements."""
    from datetime import timedelta

    import django

    django.setup()
    from django.db import close_old_connections, connection
    from django.utils import timezone

    from forum import consumers, publishing, realtime
    from forum.models import ChatMessage, ChatRoom, Membership, SupportGroup, User

    realtime._send = lambda group, event: None  # the event loop's part, not measured here
    group = SupportGroup.objects.create(
        name="Bench", slug="bench", kind=SupportGroup.Kind.MUTUAL_AID,
        guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
    )  # fmt: skip
    member = User.objects.create(
        handle="bench-writer",
        email="bench-writer@example.test",
        date_joined=timezone.now() - timedelta(days=100),
    )
    Membership.objects.create(user=member, group=group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    earlier = ChatRoom.objects.create(group=group, name="Earlier", slug="earlier")
    ChatMessage.objects.bulk_create(
        [ChatMessage(room=earlier, author=member, client_id=f"earlier-{n}", source="Hello.",
                     html="<p>Hello.</p>", seq=n + 1, version=n + 1) for n in range(history)],
        batch_size=1000,
    )  # fmt: skip
    ChatRoom.objects.filter(pk=earlier.pk).update(last_seq=history)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have, long before a busy evening

    consumer = consumers.ChatConsumer()
    consumer.user_id, consumer.room_id = member.pk, room.pk
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    # The consumer passes a message's client id, to be checked with the member (older code,
    # a "before" run, took the change alone).
    takes_client_id = len(inspect.signature(consumer._with_fresh_state).parameters) == 2

    def send(n: int) -> None:
        close_old_connections()  # as Channels does around each database call
        consumer._with_fresh_state(
            lambda user, room: publishing.publish_chat_message(
                author=user, room=room, body=f"Checking in tonight, day {n} sober.",
                client_id=f"c{n}",
            ),
            *([f"c{n}"] if takes_client_id else []),
        )  # fmt: skip

    for n in range(WARM):
        send(n)
    backend = connection.connection.info.backend_pid
    profiler = cProfile.Profile() if profile else None
    database_before = backend_cpu_seconds(backend)
    wall, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        if profiler:
            profiler.enable()
        for n in range(WARM, WARM + messages):
            send(n)
        if profiler:
            profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    database_after = backend_cpu_seconds(backend)
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(profile).print_stats(40)
    if connection.connection.info.backend_pid != backend:
        sys.exit("the connection was replaced mid-run: PostgreSQL's CPU is not comparable")
    return {
        "messages": messages,
        "history": history,
        "wall_ms": round(wall / messages * 1000, 3),
        "worker_cpu_ms": round(cpu / messages * 1000, 3),
        "postgres_cpu_ms": None
        if database_before is None
        else round((database_after - database_before) / messages * 1000, 3),
        "statements": round(statements / messages, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages measured (2000)")
    parser.add_argument(
        "--history", type=int, default=2000, help="messages the member wrote before (2000)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--profile", default="", help="cProfile the sends, sorted by this key")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child, inside Django
        print(json.dumps(measure(args.messages, args.history, args.profile)))
        return
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kinship-write-")))
        database_url = stack.enter_context(fresh_database(os.environ.get("DATABASE_URL", "")))
        env = app_env(database_url, stack.enter_context(private_redis()), tmp / "static")
        env["KINSHIP_CHAT_RATE_LIMIT"] = f"{10 * (args.messages + WARM)}/10"
        manage(env, "migrate", "--noinput", "-v0")
        figures, profile = measure_in_child(
            __file__, env, "--messages", str(args.messages), "--history", str(args.history),
            "--profile", args.profile,
        )  # fmt: skip
    if args.profile:
        print(profile)
    log(
        f"{figures['messages']} messages by a member with {figures['history']} before: "
        f"{figures['wall_ms']} ms each, worker CPU {figures['worker_cpu_ms']} ms, "
        f"PostgreSQL CPU {figures['postgres_cpu_ms']} ms, {figures['statements']} statements"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
