"""Where a thread page's time goes, in process: the whole request, then each part of it.

One run: a fresh PostgreSQL database on the server DATABASE_URL names, seeded by
`manage.py seed_bench`, and a private redis-server (bench/pages.py's helpers), production
settings. A child process inside Django reads one thread of 30 posts through the test
client, as a visitor and as a member of its group, first warming what the cache keeps, then
N times; the thread page's functions are wrapped where they are called and their time
summed. Not a load test (bench/pages.py is): this says which part of one request to look at.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \\
        bench/thread_parts.py --scale 0.1 --requests 200

See bench/README.md ("Pages: pages.py", "What each read costs now").
"""

import argparse
import collections
import cProfile
import functools
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages import measure_in_child, read_thread_and_reader, seeded_test_client_env

# (module, function) pairs timed where the thread page calls them; "Class.method" for a
# method.
PARTS = [
    ("forum.views.threads", "thread_detail"),
    ("forum.views.threads", "get_token"),
    ("forum.views.threads", "masked_token"),
    ("forum.views.threads", "_read_page_key"),
    ("django.contrib.auth", "get_user"),
    ("django.middleware.csrf", "CsrfViewMiddleware.process_response"),
    ("forum.csrf", "HeldCookieMiddleware.process_response"),
    ("forum.backends", "load_member"),
    ("forum.frames", "page"),
    ("forum.fragments", "Body.fill"),
    ("forum.views.threads", "_member_body_key"),
    ("forum.views.threads", "_body"),
    ("forum.views.threads", "_thread_response"),
    ("forum.views.threads", "_thread_context"),
    ("forum.views.threads", "render"),
    ("forum.page_cache", "visitor_page"),
    ("forum.selectors", "thread_to_read"),
    ("forum.selectors", "_thread_viewer"),
    ("forum.selectors", "thread_page"),
    ("forum.selectors", "page_summary"),
    ("forum.fragments", "render_posts"),
    ("forum.fragments", "_key"),
]


def measure(requests: int, profile: str = "") -> dict:
    """In the child: milliseconds per request, whole and by part, for each reader."""
    import importlib

    import django

    django.setup()
    from django.test import Client

    spent = collections.Counter()

    def timed(function, label):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return wrapper

    for module_name, name in PARTS:
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            continue
        *classes, attribute = name.split(".")
        for each in classes:
            owner = getattr(owner, each, None)
        if hasattr(owner, attribute):  # older code (a "before" run) lacks some parts
            setattr(owner, attribute, timed(getattr(owner, attribute), f"{module_name}.{name}"))

    thread, reader = read_thread_and_reader()
    url = thread.get_absolute_url()
    figures = {}
    for who in ("visitor", "member"):
        client = Client(HTTP_HOST="127.0.0.1")
        if who == "member":
            client.force_login(reader)
        for _ in range(20):
            assert client.get(url).status_code == 200
        spent.clear()
        profiler = cProfile.Profile() if profile and who == "member" else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(requests):
            client.get(url)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(profile).print_stats(45)
        total = (time.perf_counter() - started) / requests * 1000
        figures[who] = {
            "ms_per_request": round(total, 2),
            "parts_ms": {
                label: round(seconds / requests * 1000, 2) for label, seconds in spent.most_common()
            },
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="seed_bench --scale (0.1)")
    parser.add_argument("--requests", type=int, default=200, help="requests per reader (200)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument(
        "--profile", default="", help="cProfile the member's requests, sorted by this key (tottime)"
    )
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child, inside Django
        print(json.dumps(measure(args.requests, args.profile)))
        return
    with seeded_test_client_env(args.scale, "kinship-parts-") as env:
        figures, profile = measure_in_child(
            __file__, env, "--requests", str(args.requests), "--profile", args.profile
        )
    if args.profile:
        print(profile)
    for who, result in figures.items():
        print(f"{who}: {result['ms_per_request']} ms per request")
        for label, ms in result["parts_ms"].items():
            print(f"  {label:40} {ms:7.2f} ms")
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
