"""DJANGO_DB_POOL: pooled PostgreSQL connections instead of persistent ones (for ASGI)."""

import json

from tests.forum.test_settings import run_manage

SHOW = (
    "from django.conf import settings; import json; "
    "db = settings.DATABASES['default']; "
    "print(json.dumps([db['CONN_MAX_AGE'], db.get('OPTIONS', {}).get('pool')]))"
)
POSTGRES = "postgres://kinship@db.invalid:5432/kinship"


def settings_with(**env: str) -> list:
    result = run_manage("shell", "-c", SHOW, DJANGO_DEBUG="true", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_pool_replaces_persistent_connections_on_postgresql():
    assert settings_with(DATABASE_URL=POSTGRES, DJANGO_DB_POOL="true") == [
        0,
        {"min_size": 2, "max_size": 10},
    ]
    assert settings_with(DATABASE_URL=POSTGRES, DJANGO_DB_POOL="true", DJANGO_DB_POOL_SIZE="4") == [
        0,
        {"min_size": 2, "max_size": 4},
    ]


def test_without_it_connections_persist_and_sqlite_never_pools():
    assert settings_with(DATABASE_URL=POSTGRES) == [60, None]
    assert (
        settings_with(DATABASE_URL="sqlite:////tmp/kinship-pool.sqlite3", DJANGO_DB_POOL="true")[1]
        is None
    )
