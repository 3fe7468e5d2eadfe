"""A bounded multi-room load run: many rooms chatting at once across two workers.

``--rooms`` rooms of ``--members`` members each (500 sockets in 50 rooms by default),
connected alternately to two uvicorn workers of Kinship sharing one Redis and one
PostgreSQL database, as in ``chat_fanout.py``, whose helpers (services, members with
sessions, and its ``Run``, one per room here, since sequence numbers are per room) this
reuses. Every member sends ``--rate`` messages/s (open loop, on a fixed schedule) for
``--duration`` seconds; every message goes through the real write path. Run from the
repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/load_run.py [--duration 180] [--json FILE]

Reported: send-to-receive latency over every (message, member) pair of every room
(p50/p95/p99), ack latency, the error rate (send failures, error frames and sockets
closed mid-run, over messages sent), and per room: sent, acked, lost (member-message
pairs not received live after the drain, then recovered by resume or not), duplicates
and messages that arrived after a higher seq. Everything is on loopback and bounded.
"""

import argparse
import asyncio
import contextlib
import json
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
    wait_for_quiet_machine,
)
from connections import raise_fd_limit


def room_runs(args, workers: list[Server], group: str) -> list[Run]:
    per_room = SimpleNamespace(
        clients=args.members,
        senders=args.members,
        rate=args.rate * args.members,
        messages=round(args.rate * args.members * args.duration),
    )
    origins = [f"http://127.0.0.1:{w.port}" for w in workers]
    return [
        Run(
            f"load{n}",
            [f"ws://127.0.0.1:{w.port}/ws/g/{group}/chat/load-{n}/" for w in workers],
            origins,
            per_room,
        )
        for n in range(args.rooms)
    ]


def stats(values: list[float]) -> dict:
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)} | {
        "max": max(values, default=float("nan"))
    }


async def measure(args, runs: list[Run], sessions: list[str], pids: dict[str, int]) -> dict:
    result: dict = {}
    start = time.monotonic()
    for n, run in enumerate(runs):  # room by room: a bounded number of handshakes at once
        await run.connect_all(sessions[n * args.members : (n + 1) * args.members])
    result["connect_s"] = time.monotonic() - start
    settle = await asyncio.gather(*(run.settle_presence(timeout=60) for run in runs))
    result["rooms_presence_settled"] = sum(s == s for s in settle)  # NaN: did not settle
    await asyncio.sleep(2)
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    driver_before, busy_before = time.process_time(), machine_busy_seconds()
    start = time.monotonic()
    lateness = await asyncio.gather(*(run.send_all() for run in runs))
    send_seconds = time.monotonic() - start
    await asyncio.gather(*(run.drain(timeout=args.drain) for run in runs))
    elapsed = time.monotonic() - start
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["driver"] = time.process_time() - driver_before
    busy = machine_busy_seconds() - busy_before
    result.update(
        send_seconds=send_seconds,
        send_lateness_max_s=max(lateness),
        cpu_cores={name: round(value / elapsed, 2) for name, value in cpu.items()},
        other_load_cores=round(max(0.0, busy - sum(cpu.values())) / elapsed, 2),
        loadavg=Path("/proc/loadavg").read_text().split()[:3],
    )
    rooms = []
    latencies: list[float] = []
    acks: list[float] = []
    for run in runs:
        figures = run.results()
        expected = {seq for seq, _ in run.acks.values()}
        latencies += [
            ns / 1e6 for c in run.clients for seq, ns in c.latency_ns.items() if seq in expected
        ]
        acks += [ns / 1e6 for _, ns in run.acks.values()]
        recovered = await run.recover(timeout=60) if figures["lost_pairs"] else 0
        rooms.append(
            {
                "room": run.name,
                "sent": figures["messages_sent"],
                "acked": figures["messages_acked"],
                "send_failures": figures["send_failures"],
                "lost_pairs": figures["lost_pairs"],
                "recovered_pairs": recovered,
                "duplicates": figures["duplicates"],
                "out_of_order": figures["out_of_order"],
                "sockets_closed": figures["disconnected_clients"],
                "error_frames": sum(figures["errors"].values()),
                "errors": figures["errors"],
                "closes_sample": figures["disconnects_sample"][:2],
            }
        )
    for run in runs:
        await run.close()
    sent = sum(r["sent"] for r in rooms)
    acked = sum(r["acked"] for r in rooms)
    # The write path's throughput: acks from the first send to the last ack.
    first_send = min(min(run.sent_ns.values(), default=0) for run in runs)
    last_ack = max(run.last_ack_ns for run in runs)
    errors = sum(r["send_failures"] + r["error_frames"] + r["sockets_closed"] for r in rooms)
    result.update(
        sockets=sum(len(run.clients) for run in runs),
        messages_sent=sent,
        messages_acked=acked,
        acked_per_s=acked / max(1e-9, (last_ack - first_send) / 1e9) if acked else 0.0,
        deliveries=len(latencies),
        latency_ms=stats(latencies),
        ack_ms=stats(acks),
        errors=errors,
        error_rate=errors / max(1, sent),
        lost_pairs=sum(r["lost_pairs"] for r in rooms),
        recovered_pairs=sum(r["recovered_pairs"] for r in rooms),
        duplicates=sum(r["duplicates"] for r in rooms),
        out_of_order=sum(r["out_of_order"] for r in rooms),
        rooms=rooms,
    )
    return result


def report(result: dict) -> str:
    lat, ack = result["latency_ms"], result["ack_ms"]
    lines = [
        f"sockets {result['sockets']}, messages sent {result['messages_sent']}, "
        f"acked {result['messages_acked']} ({result['acked_per_s']:.1f}/s)",
        f"send-to-receive ms: p50 {lat['p50']:.1f}, p95 {lat['p95']:.1f}, "
        f"p99 {lat['p99']:.1f}, max {lat['max']:.1f} ({result['deliveries']} pairs)",
        f"ack ms: p50 {ack['p50']:.1f}, p95 {ack['p95']:.1f}, p99 {ack['p99']:.1f}",
        f"errors {result['errors']} (rate {result['error_rate']:.4f}); lost pairs "
        f"{result['lost_pairs']}, recovered {result['recovered_pairs']}; duplicates "
        f"{result['duplicates']}; after a higher seq {result['out_of_order']}",
        f"CPU (cores) {result['cpu_cores']}, other load {result['other_load_cores']}, "
        f"load average {' '.join(result['loadavg'])}",
        "",
        "| room | sent | acked | lost | recovered | duplicates | out of order | closed | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rooms"]:
        lines.append(
            f"| {r['room']} | {r['sent']} | {r['acked']} | {r['lost_pairs']} | "
            f"{r['recovered_pairs']} | {r['duplicates']} | {r['out_of_order']} | "
            f"{r['sockets_closed']} | {r['send_failures'] + r['error_frames']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--members", type=int, default=10, help="members (sockets) per room")
    parser.add_argument("--rate", type=float, default=1.0, help="messages/s per member")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of sending")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait at the end")
    parser.add_argument("--layer", default="pubsub", choices=("core", "pubsub"))
    parser.add_argument("--quiet-wait", type=float, default=60.0)
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
    parser.add_argument("--logs", type=Path, help="keep the server logs in this folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if min(args.rooms, args.members) < 1 or args.rate <= 0 or not 0 < args.duration <= 3600:
        parser.error("need rooms, members >= 1, rate > 0, 0 < duration <= 3600")
    raise_fd_limit()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    with tempfile.TemporaryDirectory(prefix="kinship-bench-") as tmp_name:
        tmp = args.logs or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        services = Services(args.redis_url, tmp, sqlite=args.sqlite)
        workers: list[Server] = []
        try:
            services.start()
            info = machine(services)
            rooms = ",".join(f"load-{n}" for n in range(args.rooms))
            clients = str(args.rooms * args.members)
            env = app_env(services, KINSHIP_CHANNEL_LAYER=args.layer, BENCH_CLIENTS=clients,
                          BENCH_ROOMS=rooms)  # fmt: skip
            log(f"database {info['database']}, redis {services.redis_url}; migrating")
            manage(env, "migrate", "--noinput", "-v0")
            world = json.loads(tagged(manage(env, "shell", "-c", SETUP), "BENCH"))
            wait_for_quiet_machine(patience=args.quiet_wait)
            workers = [
                Server.uvicorn(f"load-worker-{n}", env, tmp, deflate=args.ws_deflate)
                for n in range(2)
            ]
            for worker in workers:
                worker.wait_ready(http=True)
            runs = room_runs(args, workers, world["group"])
            pids = {f"worker-{n}": w.process.pid for n, w in enumerate(workers)}
            log(f"{args.rooms} rooms x {args.members} members, {args.rate:g} message/s each, "
                f"for {args.duration:g} s")  # fmt: skip
            result = asyncio.run(measure(args, runs, world["sessions"], pids))
            result["worker_exceptions"] = sum(
                w.log_path.read_text(errors="replace").count("Exception in ASGI application")
                for w in workers
            )
        finally:
            for worker in workers:
                worker.stop()
            services.stop()
    settings = {k: v for k, v in vars(args).items() if k not in {"json", "logs"}}
    print(report(result))
    if args.json:
        document = {"machine": info, "settings": settings, "results": result}
        args.json.write_text(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    main()
