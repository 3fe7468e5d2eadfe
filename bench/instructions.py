"""A thread page's cost in CPU instructions, for a visitor and for a member: a figure that a
machine's swings in speed do not move, where timings on a shared machine can differ by half
from one run to the next.

One run: the database and Redis of bench/thread_parts.py (a fresh PostgreSQL database seeded
by `manage.py seed_bench`, a private redis-server, production settings). For each reader, a
child process under `valgrind --tool=callgrind` reads one thread of 30 posts through the test
client, first warming what the cache keeps, then N times with counting switched on
(`callgrind_control -i on`), so only those N requests are counted. Valgrind runs a request
some fifty times slower, so the child stretches the workers' in-process expiries (10 s) to
an hour: each request is the steady state a worker at full speed is in.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \\
        bench/instructions.py --scale 0.1 --requests 200

See bench/README.md ("Latest runs: the rest of a member's page").
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages import PYTHON, ROOT, log, read_thread_and_reader, seeded_test_client_env

READERS = ("visitor", "member")
WARM = 30


def _counting(on: bool) -> None:
    control = shutil.which("callgrind_control") or "callgrind_control"
    switch = [control, "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(switch, check=True, capture_output=True)  # noqa: S603 - fixed arguments


def measure(who: str, requests: int) -> None:
    """In the child, under callgrind: ``requests`` thread pages as ``who``, counted."""
    import django

    django.setup()
    from django.test import Client

    from forum import backends, fragments, page_cache

    for kept in (
        backends._kept,
        page_cache.member_pages,
        page_cache.pages,
        page_cache.rows,
        fragments.bodies,
        fragments.cache,
    ):
        kept.ttl = 3600
    thread, reader = read_thread_and_reader()
    url = thread.get_absolute_url()
    client = Client(HTTP_HOST="127.0.0.1")
    if who == "member":
        client.force_login(reader)
    for _ in range(WARM):
        assert client.get(url).status_code == 200
    _counting(True)
    for _ in range(requests):
        client.get(url)
    _counting(False)


def count(env: dict, who: str, requests: int) -> int:
    """Instructions per request for ``who``."""
    with tempfile.TemporaryDirectory(prefix="kinship-callgrind-") as tmp:
        command = [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={tmp}/callgrind.out",
            *(PYTHON, __file__, "--measure", who, "--requests", str(requests)),
        ]
        child = subprocess.run(  # noqa: S603 - fixed argument list
            command,
            cwd=ROOT,
            env={**env, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", child.stderr)
    if child.returncode != 0 or found is None:
        sys.exit(f"counting {who} failed:\n{child.stderr[-4000:]}")
    return int(found[1]) // requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="seed_bench --scale (0.1)")
    parser.add_argument("--requests", type=int, default=200, help="requests per reader (200)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--measure", choices=READERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child, inside Django, under callgrind
        measure(args.measure, args.requests)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (Debian: apt-get install valgrind)")
    with seeded_test_client_env(args.scale, "kinship-instructions-") as env:
        figures = {}
        for who in READERS:
            figures[who] = count(env, who, args.requests)
            log(f"{who}: {figures[who]:,} instructions per request")
    figures["member_over_visitor"] = round(figures["member"] / figures["visitor"], 3)
    print(json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
