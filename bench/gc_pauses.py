"""How long the garbage collector stops a worker, with and without forum.heap's freeze.

One run: a fresh PostgreSQL database on the server DATABASE_URL names, seeded by
`manage.py seed_bench`, and a private redis-server (bench/pages.py's helpers), production
settings. For each page, a child process inside Django reads it as a member through the
test client, warms it, then times N more requests and every collection the interpreter
makes meanwhile, by generation (``gc.callbacks``); once as loaded, once after
``gc.freeze()`` (what forum.heap does after a server's first response).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \\
        bench/gc_pauses.py --scale 0.1 --requests 2000

See bench/README.md ("Latest runs").
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages import measure_in_child, read_thread_and_reader, seeded_test_client_env

PAGES = ("thread", "group")


def measure(page: str, requests: int, freeze: bool) -> dict:
    """In the child: request times and collection pauses for one page, in milliseconds."""
    import gc

    import django

    django.setup()
    from django.test import Client

    thread, reader = read_thread_and_reader()
    url = thread.get_absolute_url() if page == "thread" else thread.group.get_absolute_url()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(reader)
    for _ in range(50):
        assert client.get(url).status_code == 200
    if freeze:
        gc.freeze()
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = {}

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started["at"] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started["at"])

    gc.callbacks.append(timed)
    times = []
    for _ in range(requests):
        begun = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - begun)
    gc.callbacks.remove(timed)
    times.sort()
    return {
        "tracked_objects": len(gc.get_objects()),
        "frozen_objects": gc.get_freeze_count(),
        "ms_per_request": round(sum(times) / requests * 1000, 3),
        "p99_ms": round(times[int(requests * 0.99)] * 1000, 2),
        "max_ms": round(times[-1] * 1000, 2),
        "collections": {
            f"gen{generation}": {
                "count": len(found),
                "ms_per_request": round(sum(found) / requests * 1000, 4),
                "max_ms": round(max(found) * 1000, 2) if found else 0.0,
            }
            for generation, found in pauses.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="seed_bench --scale (0.1)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per page (2000)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child: page,freeze
    args = parser.parse_args()
    if args.measure:
        page, freeze = args.measure.split(",")
        print(json.dumps(measure(page, args.requests, freeze == "freeze")))
        return
    figures = {}
    with seeded_test_client_env(args.scale, "kinship-gc-") as env:
        for page in PAGES:
            for freeze in ("as-loaded", "freeze"):
                figures[f"{page}, {freeze}"], _ = measure_in_child(
                    __file__, env, f"{page},{freeze}", "--requests", str(args.requests)
                )
    for name, result in figures.items():
        print(
            f"{name:18} {result['ms_per_request']:.2f} ms a request, p99 {result['p99_ms']} ms,"
            f" max {result['max_ms']} ms; {result['tracked_objects']:,} objects tracked,"
            f" {result['frozen_objects']:,} frozen"
        )
        for generation, found in result["collections"].items():
            print(
                f"  {generation}: {found['count']} collections,"
                f" {found['ms_per_request']} ms a request, longest {found['max_ms']} ms"
            )
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
