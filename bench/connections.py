"""Idle chat connections across two workers: memory, idle CPU, and page latency under chat.

Two uvicorn workers of Kinship share one Redis (a private redis-server) and one
PostgreSQL database (created fresh on the server DATABASE_URL names and dropped at the
end), as in ``chat_fanout.py``, whose helpers this reuses. Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/connections.py [--idle 2000] [--rooms 100] [--json FILE]

1. ``--idle`` members connect to the chat rooms of one group (``--rooms`` rooms, spread
   evenly, alternately to each worker) and stay connected, reading what the server sends
   (presence, heartbeats). Measured: each worker's resident memory (RSS) after a warm-up
   of ``--warm`` connections and after all of them, so memory per connection is the RSS
   delta over the connections opened after the warm-up; open file descriptors.
2. Idle: nothing is sent for ``--idle-seconds``; the workers' CPU time over that span is
   their idle cost (heartbeats, presence renewal, uvicorn's pings), in % of one core.
3. A thread page with 30 replies is fetched over keep-alive connections at
   ``--http-rate`` requests/s (open loop, latency counted from the scheduled time, by a
   separate process so the websocket clients do not delay it) for ``--http-seconds``:
   first with the idle connections only, then while ``--chatters`` more members in one
   room chat at ``--rate`` messages/s (``--senders`` of them sending). Reported: p50/p99
   of both, and their ratio.

The bench raises its own RLIMIT_NOFILE to the hard limit (the workers inherit it).
Everything is on loopback; every phase is bounded in time.
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_fanout import (
    SETUP,
    Run,
    Server,
    Services,
    app_env,
    cpu_seconds,
    log,
    machine,
    machine_busy_seconds,
    manage,
    percentile,
    tagged,
)

THREAD_SETUP = """
from forum import publishing
from forum.models import SupportGroup, User

group = SupportGroup.objects.get(slug="bench")
users = list(User.objects.filter(handle__startswith="bench").order_by("handle")[:31])
body = ("Thank you all for last night. Monday was the hardest day, but I went for a walk "
        "first and called my sponsor. **One day at a time.**\\n\\n- meetings\\n- sleep\\n- food")
thread = publishing.publish_thread(author=users[0], group=group, title="How this week went",
                                   body=body)
for user in users[1:]:
    publishing.publish_reply(author=user, thread=thread, body=f"{body}\\n\\nFrom {user.handle}.")
print("THREAD " + str(thread.pk))
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the HTTP load generator (run as a separate process) -------------------------------


async def _fetch(reader, writer, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def http_load(targets: list[str], path: str, cookie: str, rate: float, seconds: float):
    """Open-loop GETs of ``path`` at ``rate``/s over keep-alive connections (4 per target);
    latency from each request's scheduled time, so a slow response delays no count."""
    per_connection = 4
    connections = len(targets) * per_connection
    interval = connections / rate
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5

    async def one(n: int) -> None:
        host, port = targets[n % len(targets)].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: sessionid={cookie}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        due = start + n * interval / connections
        try:
            while due < start + seconds:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                status = await asyncio.wait_for(_fetch(reader, writer, request), timeout=30)
                latencies.append((loop.time() - due) * 1e3)
                statuses[status] = statuses.get(status, 0) + 1
                due += interval
        finally:
            writer.close()

    await asyncio.gather(*(one(n) for n in range(connections)))
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
    }


def run_http_load(targets: list[str], path: str, cookie: str, args) -> dict:
    """The load generator in its own process, so the websocket clients cannot delay it."""
    argv = [sys.executable, __file__, "--http-only", ",".join(targets), path, cookie,
            str(args.http_rate), str(args.http_seconds)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603


def http_result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=300)
    return json.loads(out.strip().splitlines()[-1])


# --- idle connections -------------------------------------------------------------------


async def open_idle(urls, origins, sessions, count, gate, opened, failures):
    from websockets.asyncio.client import connect

    async def drain(ws) -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    async def one(n: int) -> None:
        server = n % len(origins)
        headers = {"Origin": origins[server], "Cookie": f"sessionid={sessions[n]}"}
        for attempt in range(3):
            try:
                async with gate:
                    ws = await connect(urls[n][server], additional_headers=headers,
                                       open_timeout=60, close_timeout=2, proxy=None)  # fmt: skip
                opened.append((ws, asyncio.get_running_loop().create_task(drain(ws))))
                return
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}")
                if attempt == 2:
                    return
                await asyncio.sleep(1)

    await asyncio.gather(*(one(n) for n in count))


async def measure(args, workers, world, thread_path) -> dict:
    pids = [w.process.pid for w in workers]
    origins = [f"http://127.0.0.1:{w.port}" for w in workers]
    rooms = [f"idle-{n}" for n in range(args.rooms)]
    urls = [
        [f"ws://127.0.0.1:{w.port}/ws/g/{world['group']}/chat/{rooms[n % args.rooms]}/"
         for w in workers]
        for n in range(args.idle)
    ]  # fmt: skip
    sessions = world["sessions"]
    opened, failures = [], []
    gate = asyncio.Semaphore(20)
    result: dict = {"idle_connections_wanted": args.idle}

    rss_start = [rss_kib(pid) for pid in pids]
    log(f"connecting {args.warm} warm-up sockets")
    await open_idle(urls, origins, sessions, range(args.warm), gate, opened, failures)
    await asyncio.sleep(3)
    rss_warm = [rss_kib(pid) for pid in pids]
    warm = len(opened)
    log(f"connecting the other {args.idle - args.warm}")
    start = time.monotonic()
    await open_idle(urls, origins, sessions, range(args.warm, args.idle), gate, opened, failures)
    result["connect_s"] = time.monotonic() - start
    await asyncio.sleep(5)  # presence and first heartbeats settle
    rss_all = [rss_kib(pid) for pid in pids]
    connected = len(opened)
    result.update(
        idle_connections=connected,
        connect_failures=len(failures),
        connect_failure_samples=failures[:5],
        rss_kib_start=rss_start,
        rss_kib_warm=rss_warm,
        rss_kib_all=rss_all,
        kib_per_connection=(sum(rss_all) - sum(rss_warm)) / max(1, connected - warm),
        open_fds=[open_fds(pid) for pid in pids],
    )
    log(f"  {connected} open, {result['kib_per_connection']:.1f} KiB per connection")

    log(f"idle for {args.idle_seconds:.0f} s")
    cpu_before = [cpu_seconds(pid) for pid in pids]
    busy_before, start = machine_busy_seconds(), time.monotonic()
    await asyncio.sleep(args.idle_seconds)
    elapsed = time.monotonic() - start
    idle_cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    result["idle_cpu_percent_of_a_core"] = [round(100 * c / elapsed, 2) for c in idle_cpu]
    result["idle_cpu_percent_total"] = round(100 * sum(idle_cpu) / elapsed, 2)
    result["idle_other_load_cores"] = round(
        max(0.0, machine_busy_seconds() - busy_before - sum(idle_cpu)) / elapsed, 2
    )
    still_open = sum(1 for ws, task in opened if not task.done())
    result["idle_connections_still_open"] = still_open
    log(f"  idle CPU {result['idle_cpu_percent_of_a_core']} % of a core; {still_open} open")

    targets = [f"127.0.0.1:{w.port}" for w in workers]
    log(f"thread page, no chat: {args.http_rate:.0f} req/s for {args.http_seconds:.0f} s")
    busy_before, start = machine_busy_seconds(), time.monotonic()
    result["page_without_chat"] = http_result(
        run_http_load(targets, thread_path, sessions[-1], args)
    )
    result["page_without_chat"]["machine_busy_cores"] = round(
        (machine_busy_seconds() - busy_before) / (time.monotonic() - start), 2
    )

    log(f"thread page while {args.chatters} members chat at {args.rate:.0f} messages/s")
    chat = Run(
        "chat",
        [f"ws://127.0.0.1:{w.port}/ws/g/{world['group']}/chat/chat/" for w in workers],
        origins,
        SimpleNamespace(
            clients=args.chatters,
            senders=args.senders,
            rate=args.rate,
            messages=int(args.rate * (args.http_seconds + 4)),
        ),
    )
    await chat.connect_all(sessions[: args.chatters])
    await asyncio.sleep(3)
    busy_before, start = machine_busy_seconds(), time.monotonic()
    cpu_before = [cpu_seconds(pid) for pid in pids]
    sending = asyncio.ensure_future(chat.send_all())
    await asyncio.sleep(2)  # the chat is under way before the page load starts
    load = run_http_load(targets, thread_path, sessions[-1], args)
    page = await asyncio.get_running_loop().run_in_executor(None, http_result, load)
    await sending
    await chat.drain(timeout=30)
    elapsed = time.monotonic() - start
    page["machine_busy_cores"] = round((machine_busy_seconds() - busy_before) / elapsed, 2)
    page["worker_cpu_cores"] = round(
        sum(cpu_seconds(p) - b for p, b in zip(pids, cpu_before, strict=True)) / elapsed, 2
    )
    chat_figures = chat.results()
    page["chat_messages_acked"] = chat_figures["messages_acked"]
    page["chat_lost_pairs"] = chat_figures["lost_pairs"]
    page["chat_latency_ms"] = chat_figures["latency_ms"]
    result["page_with_chat"] = page
    result["p99_ratio"] = page["p99_ms"] / result["page_without_chat"]["p99_ms"]
    await chat.close()
    for ws, task in opened:
        task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout=1)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--http-only":
        targets, path, cookie, rate, seconds = sys.argv[2:7]
        figures = asyncio.run(
            http_load(targets.split(","), path, cookie, float(rate), float(seconds))
        )
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=2000, help="idle chat connections")
    parser.add_argument("--warm", type=int, default=100, help="connections before the baseline")
    parser.add_argument("--rooms", type=int, default=100, help="rooms the idle members sit in")
    # Three heartbeat periods (20 s) and six presence renewals: with 30 s, one or two
    # heartbeats fell in the window, and the figure with them (1.8 or 2.6 % a worker).
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--chatters", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="chat messages/s")
    parser.add_argument("--http-rate", type=float, default=20.0, help="thread page requests/s")
    parser.add_argument("--http-seconds", type=float, default=20.0)
    parser.add_argument("--ws", default="auto", help="uvicorn's --ws (websocket protocol)")
    parser.add_argument(
        "--ws-deflate",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="uvicorn's --ws-per-message-deflate (off in the documented deploy command)",
    )
    parser.add_argument("--redis-url", help="use this Redis (db 10) instead of a private one")
    parser.add_argument(
        "--sqlite", action="store_true", help="measure SQLite when DATABASE_URL is not PostgreSQL"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not 0 < args.warm < args.idle or args.senders > args.chatters:
        parser.error("need 0 < warm < idle and senders <= chatters")
    limit = raise_fd_limit()
    if limit < 2 * args.idle + 1000:
        parser.error(f"RLIMIT_NOFILE hard limit {limit} is too low for {args.idle} sockets")
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    with tempfile.TemporaryDirectory(prefix="kinship-bench-") as tmp_name:
        tmp = Path(tmp_name)
        services = Services(args.redis_url, tmp, sqlite=args.sqlite)
        workers = []
        try:
            services.start()
            info = machine(services)
            rooms = [f"idle-{n}" for n in range(args.rooms)] + ["chat"]
            # These workers serve pages too: with the pool, as docs/operations.md says an
            # ASGI worker that serves pages must (else every page opens a connection).
            env = app_env(services, BENCH_CLIENTS=str(max(args.idle, args.chatters)),
                          BENCH_ROOMS=",".join(rooms), DJANGO_DB_POOL="true")  # fmt: skip
            log(f"database {info['database']}, redis {services.redis_url}; migrating")
            manage(env, "migrate", "--noinput", "-v0")
            manage(env, "collectstatic", "--noinput", "-v0")  # production's manifest storage
            world = json.loads(tagged(manage(env, "shell", "-c", SETUP), "BENCH"))
            # The thread's authors are new members: no trust holds, so every reply shows.
            setup_env = dict(env, KINSHIP_TRUST_RULES="false")
            thread = tagged(manage(setup_env, "shell", "-c", THREAD_SETUP), "THREAD")
            thread_path = f"/g/{world['group']}/t/{thread}/"
            workers = [
                Server.uvicorn(f"worker-{n}", env, tmp, ws=args.ws, deflate=args.ws_deflate)
                for n in range(2)
            ]
            for worker in workers:
                worker.wait_ready(http=True)
            result = asyncio.run(measure(args, workers, world, thread_path))
            result["worker_exceptions"] = sum(
                w.log_path.read_text(errors="replace").count("Exception in ASGI application")
                for w in workers
            )
        finally:
            for worker in workers:
                worker.stop()
            services.stop()
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    document = {"machine": info, "settings": settings, "fd_limit": limit, "results": result}
    print(json.dumps(document, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, default=str))
    # A latency of error pages measures nothing: say so rather than report it.
    refused = {
        phase: result[phase]["statuses"]
        for phase in ("page_without_chat", "page_with_chat")
        if set(result.get(phase, {}).get("statuses", {})) - {"200", 200}
    }
    if refused:
        sys.exit(f"bench: the thread page did not answer 200: {refused}")


if __name__ == "__main__":
    main()
