"""Where an idle chat connection's memory goes: a tracemalloc diff inside one worker.

One uvicorn worker of Kinship runs in a child process under tracemalloc, with a private
Redis and a fresh database as in ``chat_fanout.py`` (whose helpers this reuses). The
driver opens ``--warm`` idle chat sockets, has the worker snapshot its Python heap, opens
``--sockets`` more, snapshots again, and prints what grew per connection, by allocation
site (the line that allocated, with the caller frames that lead to it from the app), next
to the growth of the worker's resident memory (RSS also counts what C code allocates
outside Python's allocator, which tracemalloc does not see). Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/conn_memory.py [--sockets 400] [--top 25]

tracemalloc slows the worker several times over: this measures memory, never time.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_fanout import ROOT, SETUP, Services, app_env, free_port, log, manage, tagged
from connections import open_idle, raise_fd_limit, rss_kib


def serve(port: int, snapshots: Path, frames: int, ws: str, deflate: bool) -> None:
    """The worker: uvicorn in this process; a line NAME on stdin dumps a heap snapshot."""
    import uvicorn

    tracemalloc.start(frames)
    config = uvicorn.Config("forum.asgi:application", host="127.0.0.1", port=port,
                            lifespan="off", log_level="warning", access_log=False,
                            ws=ws, ws_per_message_deflate=deflate)  # fmt: skip
    server = uvicorn.Server(config)

    async def control() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            gc.collect()
            tracemalloc.take_snapshot().dump(str(snapshots / f"{line}.snapshot"))
            print(f"SNAPSHOT {line}", flush=True)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(control())
        await server.serve()
        task.cancel()

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())


class Worker:
    def __init__(self, env: dict, snapshots: Path, frames: int, ws: str, deflate: bool) -> None:
        self.port = free_port()
        self.snapshots = snapshots
        argv = [sys.executable, __file__, "--serve", str(self.port), str(snapshots),
                str(frames), ws, str(deflate)]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def wait_ready(self, timeout: float = 120) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5),
            ):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        sys.exit("bench: the traced worker did not start")

    async def snapshot(self, name: str) -> tracemalloc.Snapshot:
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, self.process.stdout.readline)
        if line.strip() != f"SNAPSHOT {name}":
            sys.exit(f"bench: the worker did not take its snapshot: {line!r}")
        return tracemalloc.Snapshot.load(str(self.snapshots / f"{name}.snapshot"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def app_frames(trace: tracemalloc.Traceback, depth: int) -> str:
    """The allocating line and the nearest caller frames, most recent first."""
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(trace)[-depth:][::-1])


async def measure(args, worker: Worker, world: dict) -> dict:
    url = f"ws://127.0.0.1:{worker.port}/ws/g/{world['group']}/chat/"
    urls = [[f"{url}idle-{n % args.rooms}/"] for n in range(args.warm + args.sockets)]
    origins = [f"http://127.0.0.1:{worker.port}"]
    opened: list = []
    failures: list[str] = []
    gate = asyncio.Semaphore(10)
    total = args.warm + args.sockets
    await open_idle(urls, origins, world["sessions"], range(args.warm), gate, opened, failures)
    await asyncio.sleep(3)
    before = await worker.snapshot("warm")
    rss_before = rss_kib(worker.process.pid)
    await open_idle(urls, origins, world["sessions"], range(args.warm, total), gate, opened,
                    failures)  # fmt: skip
    await asyncio.sleep(5)  # presence and heartbeats settle
    after = await worker.snapshot("all")
    rss_after = rss_kib(worker.process.pid)
    added = len(opened) - args.warm
    stats = after.compare_to(before, "traceback")
    traced = sum(s.size_diff for s in stats)
    by_file: dict[str, int] = {}
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        short = name.split("site-packages/")[-1] if "site-packages/" in name else name
        by_file[short] = by_file.get(short, 0) + stat.size_diff
    top = [
        {"kib_per_socket": round(s.size_diff / added / 1024, 2),
         "blocks_per_socket": round(s.count_diff / added, 2),
         "where": app_frames(s.traceback, args.depth)}
        for s in stats[: args.top]
    ]  # fmt: skip
    for ws, task in opened:
        task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout=1)
    return {
        "sockets_added": added,
        "connect_failures": len(failures),
        "rss_kib_per_socket": round((rss_after - rss_before) / max(1, added), 1),
        "traced_kib_per_socket": round(traced / max(1, added) / 1024, 1),
        "by_file_kib_per_socket": {
            name: round(size / added / 1024, 2)
            for name, size in sorted(by_file.items(), key=lambda kv: -kv[1])[: args.top]
        },
        "top_sites": top,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        port, snapshots, frames, ws, deflate = sys.argv[2:7]
        serve(int(port), Path(snapshots), int(frames), ws, deflate == "True")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=400, help="sockets measured")
    parser.add_argument("--warm", type=int, default=50, help="sockets before the first snapshot")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--frames", type=int, default=25, help="frames kept per allocation")
    parser.add_argument("--depth", type=int, default=6, help="frames shown per allocation site")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--ws", default="auto", help="uvicorn's --ws (websocket protocol)")
    parser.add_argument(
        "--ws-deflate",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="uvicorn's --ws-per-message-deflate (off in Kinship's deploy command)",
    )
    parser.add_argument("--redis-url", help="use this Redis (db 10) instead of a private one")
    parser.add_argument(
        "--sqlite", action="store_true", help="measure SQLite when DATABASE_URL is not PostgreSQL"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.sockets < 1 or args.warm < 1:
        parser.error("need --sockets >= 1 and --warm >= 1")
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="kinship-bench-") as tmp_name:
        tmp = Path(tmp_name)
        services = Services(args.redis_url, tmp, sqlite=args.sqlite)
        worker = None
        try:
            services.start()
            rooms = [f"idle-{n}" for n in range(args.rooms)]
            env = app_env(services, BENCH_CLIENTS=str(args.warm + args.sockets),
                          BENCH_ROOMS=",".join(rooms))  # fmt: skip
            log("migrating")
            manage(env, "migrate", "--noinput", "-v0")
            world = json.loads(tagged(manage(env, "shell", "-c", SETUP), "BENCH"))
            worker = Worker(env, tmp, args.frames, args.ws, args.ws_deflate)
            worker.wait_ready()
            log(f"{args.warm} warm-up sockets, then {args.sockets} measured")
            result = asyncio.run(measure(args, worker, world))
        finally:
            if worker is not None:
                worker.stop()
            services.stop()
    document = {"settings": {k: v for k, v in vars(args).items() if k != "json"},
                "results": result}  # fmt: skip
    print(json.dumps(document, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    main()
