"""Back up Kinship's PostgreSQL database and restore it, and show that nothing was lost.

On the server DATABASE_URL names (its own database is never touched), this:

1. creates a scratch database, migrates it and loads the demo community (seed_demo);
2. counts the rows of every table and takes a checksum of each table's contents;
3. dumps it with ``pg_dump --format=custom`` and drops the database;
4. restores the dump into a fresh database with ``pg_restore`` and counts again;
5. compares table by table (and checks the moderation log's append-only trigger came back),
   prints the result and drops everything it created, whether it passed or not.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kinship .venv/bin/python bench/backup_restore.py

Exit status: 0 when every table matches, 1 when something differs, 2 when it cannot run
(no PostgreSQL URL, or a pg_dump older than the server: pg_dump refuses newer servers).
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
LOG_TRIGGER = "moderation_log_no_change"

Snapshot = dict[str, tuple[int, str]]  # table -> (rows, checksum)


def database_url(url: str, name: str) -> str:
    """``url`` pointing at the database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return path


def run(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, check=True, cwd=ROOT, env=env)  # noqa: S603 (fixed argument lists)


def major_version(text: str) -> int:
    """The major version in ``pg_dump --version``'s answer, e.g. 15 in
    "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"."""
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", text)
    if found is None:
        raise SystemExit(f"Cannot tell the version of pg_dump from {text!r}.")
    return int(found.group(1))


def check_versions(server_url: str) -> str:
    """pg_dump must be at least the server's major version; returns a line saying so."""
    dump_version = subprocess.run(  # noqa: S603
        [tool("pg_dump"), "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    with psycopg.connect(server_url) as conn:
        server_num = conn.execute("SHOW server_version_num").fetchone()[0]
    server_major = int(server_num) // 10000
    dump_major = major_version(dump_version)
    if dump_major < server_major:
        raise SystemExit(
            f"{dump_version} cannot dump a PostgreSQL {server_major} server: "
            f"install the PostgreSQL {server_major} client tools."
        )
    return f"{dump_version}, server PostgreSQL {server_major}"


def snapshot(url: str) -> Snapshot:
    """Rows and a content checksum for every table in the public schema."""
    found: Snapshot = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                " FROM {} AS t"
            ).format(sql.Identifier(table))
            rows, checksum = conn.execute(query).fetchone()
            found[table] = (rows, checksum)
    return found


def has_log_trigger(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return (
            conn.execute(
                "SELECT 1 FROM pg_trigger WHERE tgname = %s AND NOT tgisinternal", [LOG_TRIGGER]
            ).fetchone()
            is not None
        )


def compare(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs between two snapshots, one line per table; empty when they match."""
    problems = []
    for table in sorted(before.keys() | after.keys()):
        if table not in after:
            problems.append(f"{table}: missing after the restore")
        elif table not in before:
            problems.append(f"{table}: only after the restore")
        elif before[table][0] != after[table][0]:
            problems.append(f"{table}: {before[table][0]} rows before, {after[table][0]} after")
        elif before[table][1] != after[table][1]:
            problems.append(f"{table}: same row count, different contents")
    return problems


def create(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("Set DATABASE_URL to a PostgreSQL server (postgres://user@host:port/db).")
        return 2
    admin_url = database_url(url, "postgres")
    print(check_versions(admin_url))
    name = f"kinship_backup_{secrets.token_hex(4)}"
    restored = f"{name}_restored"
    env = {**os.environ, "DATABASE_URL": database_url(url, name), "DJANGO_DEBUG": "true"}
    # The demo seed writes nothing worth sharing to Redis: keep it off any shared one.
    env.pop("REDIS_URL", None)
    print(f"Scratch databases: {name}, {restored} (dropped at the end)")
    try:
        create(admin_url, name)
        run(sys.executable, "manage.py", "migrate", "--noinput", "-v", "0", env=env)
        run(sys.executable, "manage.py", "seed_demo", env=env)
        before = snapshot(database_url(url, name))
        with tempfile.TemporaryDirectory() as scratch:
            dump = Path(scratch) / "kinship.dump"
            run(
                tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}",
                f"--dbname={database_url(url, name)}",
            )  # fmt: skip
            drop(admin_url, name)
            create(admin_url, restored)
            run(
                tool("pg_restore"), "--no-owner", "--exit-on-error",
                f"--dbname={database_url(url, restored)}", str(dump),
            )  # fmt: skip
            size = dump.stat().st_size
        after = snapshot(database_url(url, restored))
        problems = compare(before, after)
        if not has_log_trigger(database_url(url, restored)):
            problems.append(f"the moderation log's trigger {LOG_TRIGGER} did not come back")
    finally:
        drop(admin_url, name)
        drop(admin_url, restored)
    print(f"{'table':<45} {'before':>8} {'after':>8}")
    for table in sorted(before):
        rows_after = after.get(table, (None, ""))[0]
        print(f"{table:<45} {before[table][0]:>8} {rows_after!s:>8}")
    total = sum(rows for rows, _ in before.values())
    if problems:
        print("RESTORE DIFFERS:", *problems, sep="\n  ")
        return 1
    print(f"OK: {len(before)} tables, {total} rows restored identically from a {size:,}-byte dump.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
