"""bench/backup_restore.py: a dump restores every table, row for row."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "backup_restore.py"
spec = importlib.util.spec_from_file_location("backup_restore", SCRIPT)
backup_restore = importlib.util.module_from_spec(spec)
spec.loader.exec_module(backup_restore)


def test_compare_names_every_table_that_differs():
    before = {"a": (3, "x"), "b": (1, "y"), "c": (2, "z"), "d": (0, "")}
    after = {"a": (3, "x"), "b": (0, ""), "c": (2, "changed"), "e": (1, "w")}
    assert backup_restore.compare(before, after) == [
        "b: 1 rows before, 0 after",
        "c: same row count, different contents",
        "d: missing after the restore",
        "e: only after the restore",
    ]
    assert backup_restore.compare(before, dict(before)) == []


def test_pg_dumps_major_version_is_read_from_its_answer():
    answer = "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    assert backup_restore.major_version(answer) == 15
    with pytest.raises(SystemExit):
        backup_restore.major_version("something else 16")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="backup and restore are PostgreSQL's (pg_dump, pg_restore); DATABASE_URL is SQLite",
)
def test_a_seeded_database_survives_dump_and_restore_intact():
    url = os.environ["DATABASE_URL"]
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(SCRIPT)],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: " in result.stdout
    assert "forum_post" in result.stdout
    # It leaves nothing behind on the server.
    names = re.search(r"Scratch databases: (\S+), (\S+) ", result.stdout).groups()
    admin = backup_restore.database_url(url, "postgres")
    with psycopg.connect(admin) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [list(names)]
        ).fetchall()
    assert left == []
