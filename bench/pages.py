"""How fast Kinship serves its busiest pages, over ASGI (uvicorn) and WSGI (gunicorn).

One run: a fresh PostgreSQL database `kinship_pages_<pid>` on the server DATABASE_URL names
(dropped at the end), filled by `manage.py seed_bench`; a private redis-server on a free
loopback port; production settings (DJANGO_DEBUG off, persistent database connections,
Django's cached template loader, collected static files) with bench/settings.py adding a
bare `hello/` view. For each server, one worker process, and for each page a `wrk` run
(16 keep-alive connections, fixed duration) that reports requests/s, p50/p99 latency and
every response that was not a 200. Signed-in pages carry real session cookies. The load
average is recorded with each page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/pages.py
    ... --duration 10 --scale 1 --servers asgi,wsgi --json bench/results/pages-X.json
    ... --explain          EXPLAIN (ANALYZE, BUFFERS) of every query of every page
    ... --profile thread   py-spy samples of the server while it serves one page

See bench/README.md ("Pages: pages.py") for the figures.
"""

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from chat_fanout import PrivateRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
PAGES = [
    "hello",
    "hello-in",
    "thread-out",
    "thread-in",
    "threads-out",
    "threads-in",
    "group",
    "directory",
    "queue",
    "home",
]
SERVERS = ("asgi", "asgi-persistent", "wsgi", "wsgi-threads")
MANY_THREADS = 2000
TARGETS = {"requests_per_s": 400, "p99_ms": 50, "ratio_to_hello": 0.1, "logged_in_ratio": 0.7}
# wrk counts 3xx as success; every page here must answer 200 to count.
WRK_SCRIPT = """
statuses = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status ~= 200 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("STATUS %d %d\\n", status, n)) end
end
"""
# Pages with many addresses (threads-out, threads-in) take each in turn.
WRK_PATHS_SCRIPT = """
local paths = {%s}
local next_path = 0
function request()
  next_path = next_path %% #paths + 1
  return wrk.format("GET", paths[next_path])
end
"""


def log(text: str) -> None:
    print(f"[pages] {text}", file=sys.stderr, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --- services: database, Redis, the application's environment ------------------------------


@contextmanager
def fresh_database(configured: str):
    """A new database on the server ``configured`` names; dropped afterwards."""
    import psycopg
    from psycopg import sql

    if not configured.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/pages.py needs DATABASE_URL to name a PostgreSQL server")
    name = f"kinship_pages_{os.getpid()}"
    admin_url = urlunsplit(urlsplit(configured)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(configured)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        log(f"dropped database {name}")


@contextmanager
def private_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


def app_env(database_url: str, redis_url: str, static_root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KINSHIP_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on loopback: no redirect to HTTPS (cookies stay Secure, as deployed).
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_CONN_MAX_AGE="600",  # persistent connections, as in production
        DJANGO_STATIC_ROOT=str(static_root),
        DJANGO_LOG_LEVEL="WARNING",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def seeded_test_client_env(scale: float, prefix: str):
    """For the in-process benches: a fresh database seeded at ``scale`` and a private
    Redis, with the environment a child process reading pages through the test client
    needs (production settings)."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        database_url = stack.enter_context(fresh_database(os.environ.get("DATABASE_URL", "")))
        env = app_env(database_url, stack.enter_context(private_redis()), tmp / "static")
        env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,testserver"
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "collectstatic", "--noinput", "-v0")
        log(manage(env, "seed_bench", "--scale", str(scale)).strip())
        yield env


def read_thread_and_reader():
    """In a child inside Django: a public thread of 30 posts, and a member of its group."""
    from forum.models import Membership, Thread

    thread = (
        Thread.objects.filter(reply_count=29, group__visibility="public", hidden_at__isnull=True)
        .select_related("group")
        .order_by("pk")
        .first()
    )
    return thread, Membership.objects.filter(group=thread.group, role="member").first().user


def measure_in_child(script: str, env: dict, *args: str) -> tuple[dict, str]:
    """Run ``script --measure *args`` inside Django (the in-process benches): the figures
    it prints as JSON, and what it wrote to stderr (a profile)."""
    child = subprocess.run(  # noqa: S603 - fixed argument list
        [PYTHON, script, "--measure", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        sys.exit(f"measuring failed:\n{child.stderr}")
    return json.loads(child.stdout), child.stderr


def manage(env: dict, *args: str, timeout: float = 3600) -> str:
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# --- the pages, their sessions and their query plans (run inside Django) --------------------


def prepare(explain: bool) -> None:
    """Print the pages' URLs and session cookies as JSON (and, with ``explain``, the plans of
    every query each page runs). Runs in a child process with the application's settings."""
    import django

    django.setup()
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.middleware.csrf import CSRF_ALLOWED_CHARS
    from django.utils.crypto import get_random_string

    from forum.models import Membership, Thread, User

    thread = (
        Thread.objects.filter(
            reply_count=29, group__visibility="public", hidden_at__isnull=True, is_locked=False
        )
        .select_related("group")
        .order_by("pk")
        .first()
    )
    reader = Membership.objects.filter(group=thread.group, role="member").first().user
    moderator = User.objects.get(handle="bench-moderator-1")

    def session_for(user: User) -> str:
        store = import_module(settings.SESSION_ENGINE).SessionStore()  # as a sign-in makes it
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return store.session_key

    # Many threads of the public groups, read one after another: each read once in a run,
    # so none is in the cache, where thread-out and thread-in read one thread over and over.
    many = [
        t.get_absolute_url()
        for t in Thread.objects.filter(group__visibility="public", hidden_at__isnull=True)
        .select_related("group")
        .order_by("pk")[:MANY_THREADS]
    ]
    cookie = settings.SESSION_COOKIE_NAME
    world = {
        "reader": reader.handle,
        "moderator": moderator.handle,
        "pages": {
            "hello": ["/hello/", None],
            "hello-in": ["/hello/member/", session_for(reader)],
            "thread-out": [thread.get_absolute_url(), None],
            "thread-in": [thread.get_absolute_url(), session_for(reader)],
            "threads-out": [many, None],
            "threads-in": [many, session_for(reader)],
            "group": [thread.group.get_absolute_url(), session_for(reader)],
            "directory": ["/groups/", session_for(reader)],
            "queue": ["/moderation/queue/", session_for(moderator)],
            "home": ["/", session_for(reader)],
        },
        "cookie": cookie,
        # A member's browser, back on a page, sends the CSRF cookie an earlier page set;
        # without it every page would mint a new secret and set it again.
        "csrf_cookie": f"{settings.CSRF_COOKIE_NAME}={get_random_string(32, CSRF_ALLOWED_CHARS)}",
        "thread_posts": thread.reply_count + 1,
    }
    if explain:
        world["plans"] = query_plans(world)
    print(json.dumps(world))


LARGE_TABLES = ("forum_post", "forum_thread", "forum_user", "forum_chatmessage",
                "forum_notification", "forum_reaction", "forum_subscription",
                "forum_membership", "moderation_queueitem", "moderation_flag",
                "moderation_moderationlogentry")  # fmt: skip


def query_plans(world: dict) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    plans = {}
    for name, (url, session) in world["pages"].items():
        client = Client(HTTP_HOST="127.0.0.1")
        if session:
            client.cookies[world["cookie"]] = session
        if isinstance(url, list):
            # Warm on one thread, plan another: what reading a thread nobody read costs.
            client.get(url[-1])
            url = url[-2]
        else:
            client.get(url)  # warm: sessions and caches as for a returning reader
        with CaptureQueriesContext(connection) as queries:
            status = client.get(url).status_code
        page = []
        for query in queries.captured_queries:
            if not query["sql"].lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            seq_scans = sorted(set(re.findall(r"Seq Scan on (\w+)", plan)) & set(LARGE_TABLES))
            page.append({"sql": query["sql"], "plan": plan, "large_seq_scans": seq_scans})
        plans[name] = {"status": status, "queries": len(queries), "plans": page}
    return plans


# --- servers and load ------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, env: dict, log_path: Path):
        self.kind, self.port = kind, free_port()
        bind = f"127.0.0.1:{self.port}"
        if kind.startswith("asgi"):
            command = [str(BIN / "uvicorn"), "forum.asgi:application", "--host", "127.0.0.1",
                       "--port", str(self.port), "--workers", "1", "--no-access-log"]  # fmt: skip
        elif kind == "wsgi-threads":
            # One process, four threads: while one waits on PostgreSQL or Redis, another runs.
            command = [str(BIN / "gunicorn"), "forum.wsgi:application", "--bind", bind,
                       "--workers", "1", "--worker-class", "gthread", "--threads", "4"]  # fmt: skip
        else:
            command = [str(BIN / "gunicorn"), "forum.wsgi:application", "--bind", bind,
                       "--workers", "1", "--worker-class", "sync"]  # fmt: skip
        self.log = log_path.open("w")
        # Over ASGI persistent connections are never reused (a thread per request): the
        # "asgi" server uses the pool (DJANGO_DB_POOL), "asgi-persistent" shows the cost.
        env = {**env, "DJANGO_DB_POOL": "true" if kind == "asgi" else "false"}
        self.process = subprocess.Popen(  # noqa: S603 - fixed argument list
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.base = f"http://{bind}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/hello/", timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"{kind} server did not start; see {log_path}")

    def worker_pid(self) -> int:
        """gunicorn's worker is the arbiter's child; uvicorn with one worker is one process."""
        if self.kind.startswith("asgi"):
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return int(children.read_text().split()[0])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def fetch(url: str, cookie: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def wrk(url: str, cookie: str | None, *, duration: int, connections: int, script: Path) -> dict:
    """``url`` is the server's address and one path, or (with a paths script) the first."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
               "--timeout", "10s", url]  # fmt: skip
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(  # noqa: S603 - fixed argument list
        command, capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99_ms": to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
        "requests": requests,
        "non_200": sum(int(n) for _code, n in re.findall(r"STATUS (\d+) (\d+)", output)),
        "statuses": {code: int(n) for code, n in re.findall(r"STATUS (\d+) (\d+)", output)},
        # gunicorn's sync worker closes every connection after its response; wrk counts the
        # resulting reconnects as read errors, which are not failed requests.
        "socket_errors": {
            kind: int(n)
            for kind, n in zip(
                ("connect", "read", "write", "timeout"), errors.groups(), strict=True
            )
        }
        if errors
        else {},
    }


def check_page(base: str, name: str, url: str, cookie: str | None, world: dict) -> str:
    """Why the page cannot be measured ("" if it can): it must answer 200, signed-in
    pages as their member."""
    status, body = fetch(base + url, cookie)
    if status != 200:
        return f"{url} answered {status}, not 200"
    who = world["moderator"] if name == "queue" else world["reader"]
    if cookie and who not in body:
        return f"the page does not show {who}: the session cookie was not accepted"
    return ""


def profile(server: Server, url: str, cookie: str | None, args, out: Path, script: Path) -> None:
    """py-spy samples the worker while wrk loads one page; collapsed stacks in ``out``."""
    spy = subprocess.Popen(  # noqa: S603 - fixed argument list
        [str(BIN / "py-spy"), "record", "--format", "raw", "--rate", "200", "--pid",
         str(server.worker_pid()), "--duration", str(args.duration), "--output", str(out),
         "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    wrk(url, cookie, duration=args.duration, connections=args.connections, script=script)
    spy.wait(timeout=60)
    log(f"profile written to {out}")


def measure_server(kind: str, env: dict, world: dict, args, tmp: Path) -> dict:
    server = Server(kind, env, tmp / f"{kind}.log")
    (tmp / "status.lua").write_text(WRK_SCRIPT)
    cookie_name = world["cookie"]
    results = {}
    try:
        for name in args.pages:
            url, session = world["pages"][name]
            cookie = f"{cookie_name}={session}; {world['csrf_cookie']}" if session else None
            script = tmp / "status.lua"
            if isinstance(url, list):
                script = tmp / f"{name}.lua"
                paths = ", ".join(json.dumps(path) for path in url)
                script.write_text(WRK_SCRIPT + WRK_PATHS_SCRIPT % paths)
                url = url[0]
            refusal = check_page(server.base, name, url, cookie, world)
            if refusal:
                log(f"{kind} {name}: NOT MEASURED: {refusal}")
                results[name] = {"error": refusal, "load_average": load_average()}
                continue
            # Warm: templates compiled, connections open, caches filled.
            wrk(server.base + url, cookie, duration=2, connections=args.connections, script=script)
            if args.profile and args.profile in name:
                slug = re.sub(r"\W+", "-", name)
                out = ROOT / "bench" / "results" / f"profile-{kind}-{slug}.txt"
                profile(server, server.base + url, cookie, args, out, script)
            load = load_average()
            figures = wrk(
                server.base + url, cookie, duration=args.duration,
                connections=args.connections, script=script,
            )  # fmt: skip
            figures["load_average"] = load
            results[name] = figures
            log(f"{kind} {name}: {figures['requests_per_s']:.0f}/s p99 {figures['p99_ms']} ms")
    finally:
        server.stop()
    hello = results.get("hello", {}).get("requests_per_s")
    for figures in results.values():
        if "requests_per_s" in figures:
            figures["ratio_to_hello"] = (
                round(figures["requests_per_s"] / hello, 3) if hello else None
            )
    if "requests_per_s" in results.get("thread-in", {}) and "requests_per_s" in results.get(
        "thread-out", {}
    ):
        results["logged_in_ratio"] = round(
            results["thread-in"]["requests_per_s"] / results["thread-out"]["requests_per_s"],
            3,
        )
        if "requests_per_s" in results.get("hello-in", {}):
            # No signed-in page beats hello-in: this bounds logged_in_ratio.
            results["logged_in_ceiling"] = round(
                results["hello-in"]["requests_per_s"] / results["thread-out"]["requests_per_s"],
                3,
            )
    return results


# --- report ----------------------------------------------------------------------------------


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    versions = {
        package: version(package)
        for package in ("django", "uvicorn", "gunicorn", "psycopg", "channels")
    }
    wrk_version = subprocess.run(  # noqa: S603 - fixed argument list
        [shutil.which("wrk"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "versions": versions,
        "wrk": wrk_version.split("\n")[0].strip(),
        "kernel": platform.release(),
    }


def table(results: dict) -> str:
    lines = [
        f"{'server':15} {'page':11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x hello':>8} {'non-200':>8} {'load':>6}"
    ]
    for kind, pages in results.items():
        for name in PAGES:
            if name not in pages:
                continue
            f = pages[name]
            if "error" in f:
                lines.append(f"{kind:15} {name:11} not measured: {f['error']}")
                continue
            lines.append(
                f"{kind:15} {name:11} {f['requests_per_s']:8.0f} {f['p50_ms']:8.2f} "
                f"{f['p99_ms']:8.2f} {f['ratio_to_hello'] or 0:8.3f} {f['non_200']:8d} "
                f"{f['load_average']:6.2f}"
            )
        if "logged_in_ratio" in pages:
            lines.append(f"{kind:15} thread-in / thread-out: {pages['logged_in_ratio']}")
        if "logged_in_ceiling" in pages:
            lines.append(f"{kind:15} hello-in / thread-out: {pages['logged_in_ceiling']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per page (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--scale", type=float, default=1.0, help="seed_bench --scale (1)")
    parser.add_argument(
        "--servers",
        default="asgi,wsgi",
        help="asgi (pooled connections), asgi-persistent, wsgi, wsgi-threads",
    )
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated page names")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every query")
    parser.add_argument("--profile", help="py-spy the server while it serves this page")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:  # the child that reads the seeded database
        prepare(args.explain)
        return
    args.pages = [name.strip() for name in args.pages.split(",") if name.strip()]
    unknown = set(args.pages) - set(PAGES)
    if unknown:
        sys.exit(f"unknown pages: {', '.join(sorted(unknown))}; choose from {', '.join(PAGES)}")
    servers = [kind.strip() for kind in args.servers.split(",") if kind.strip()]
    if set(servers) - set(SERVERS) or not servers:
        sys.exit(f"--servers takes a comma-separated list of {', '.join(SERVERS)}")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    info = machine()
    started = time.monotonic()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kinship-pages-")))
        database_url = stack.enter_context(fresh_database(os.environ.get("DATABASE_URL", "")))
        redis_url = stack.enter_context(private_redis())
        env = app_env(database_url, redis_url, tmp / "static")
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "collectstatic", "--noinput", "-v0")
        seed_started = time.monotonic()
        log(f"seeding at scale {args.scale} ...")
        seeded = manage(env, "seed_bench", "--scale", str(args.scale)).strip()
        log(seeded)
        info["seed"] = {"scale": args.scale, "seconds": round(time.monotonic() - seed_started)}
        manage(env, "shell", "-c", "from django.db import connection; "
               "connection.cursor().execute('VACUUM ANALYZE')")  # fmt: skip
        prepared = subprocess.run(  # noqa: S603 - fixed argument list
            [PYTHON, __file__, "--prepare", *(["--explain"] if args.explain else [])],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if prepared.returncode != 0:
            sys.exit(f"preparing the pages failed:\n{prepared.stderr}")
        world = json.loads(prepared.stdout)
        results = {}
        for kind in servers:
            log(f"measuring {kind}")
            results[kind] = measure_server(kind, env, world, args, tmp)
    print(table(results))
    record = {
        "machine": info,
        "options": {
            "duration_s": args.duration,
            "connections": args.connections,
            "scale": args.scale,
            "servers": servers,
        },
        "thread_posts": world["thread_posts"],
        "targets": TARGETS,
        "results": results,
        "plans": world.get("plans"),
        "seconds": round(time.monotonic() - started),
    }
    if args.explain:
        for name, page in world["plans"].items():
            scans = sorted({t for plan in page["plans"] for t in plan["large_seq_scans"]})
            print(
                f"plans {name}: {page['queries']} queries, "
                f"sequential scans of large tables: {scans or 'none'}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
