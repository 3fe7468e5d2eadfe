"""Real uvicorn processes for the browser tests, each with a database of its own.

Migrating a database takes a Django process most of a minute on a busy machine, so the
schema is built once per test run into a template (an SQLite file, or a PostgreSQL
database) and each module's server starts from a copy of it. Everything in a module's
database is still written by its server process (``manage.py shell -c``), never by the test.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The server's environment: no DJANGO_* from the test run, and no Redis, so the single
    process uses the in-memory channel layer and cache. Members in these tests are minutes
    old: without KINSHIP_TRUST_RULES=false their first messages would wait for approval
    (tests/moderation/test_trust.py covers that)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_DEBUG="true",
        DJANGO_SETTINGS_MODULE="forum.settings",
        DATABASE_URL=database_url,
        DJANGO_LOG_LEVEL="WARNING",
        KINSHIP_TRUST_RULES="false",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=180
    )


class Server:
    """uvicorn serving forum.asgi in a subprocess; stop() and start() keep the port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        manage(self.env, *args)

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "uvicorn", "forum.asgi:application", "--host", "127.0.0.1",
                 "--port", str(self.port), "--lifespan", "off", "--no-access-log"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        pytest.fail("uvicorn did not start:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 3 seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()


def _postgres_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class Databases:
    """Migrated databases for the modules' servers, copied from one template each."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sqlite_template: Path | None = None
        self.postgres_url = os.environ.get("DATABASE_URL", "")
        self.postgres_template: str | None = None

    @property
    def has_postgres(self) -> bool:
        return self.postgres_url.startswith(("postgres://", "postgresql://"))

    def sqlite(self, name: str) -> str:
        """A fresh, migrated SQLite database file for one module."""
        if self.sqlite_template is None:
            template = self.workdir / "template.sqlite3"
            manage(app_env(f"sqlite:///{template}"), "migrate", "--noinput", "-v0")
            self.sqlite_template = template
        copy = self.workdir / f"{name}-{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copyfile(self.sqlite_template, copy)
        return f"sqlite:///{copy}"

    def postgres(self) -> Iterator[str]:
        """A fresh, migrated PostgreSQL database next to DATABASE_URL's, dropped after."""
        if self.postgres_template is None:
            name = f"kinship_e2e_template_{uuid.uuid4().hex[:8]}"
            _postgres_admin(self.postgres_url, f'CREATE DATABASE "{name}"')
            self.postgres_template = name
            manage(app_env(_with_database(self.postgres_url, name)), "migrate", "--noinput", "-v0")
        name = f"kinship_e2e_{uuid.uuid4().hex[:12]}"
        _postgres_admin(
            self.postgres_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.postgres_template}"'
        )
        try:
            yield _with_database(self.postgres_url, name)
        finally:
            _postgres_admin(self.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.postgres_template is not None:
            _postgres_admin(
                self.postgres_url,
                f'DROP DATABASE IF EXISTS "{self.postgres_template}" WITH (FORCE)',
            )


def start_app(tmp_path_factory, database_url: str, seed: str, **env: str) -> Server:
    """A server on ``database_url`` (already migrated), seeded by its own process."""
    live = Server(app_env(database_url, **env), tmp_path_factory.mktemp("uvicorn") / "uvicorn.log")
    live.manage("shell", "-c", seed)
    live.start()
    return live
