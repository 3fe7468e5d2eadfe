"""The database settings: pooled PostgreSQL connections instead of persistent ones
(DJANGO_DB_POOL, for ASGI), and statements bound on the server and prepared
(DJANGO_DB_PREPARED)."""

import json

from tests.forum.test_settings import run_manage

SHOW = (
    "from django.conf import settings; import json; "
    "db = settings.DATABASES['default']; "
    "print(json.dumps([db['CONN_MAX_AGE'], db.get('OPTIONS', {})]))"
)
POSTGRES = "postgres://kinship@db.invalid:5432/kinship"
SQLITE = "sqlite:////tmp/kinship-settings.sqlite3"
PREPARED = {"server_side_binding": True, "prepare_threshold": 1}


def settings_with(**env: str) -> tuple[int, dict]:
    result = run_manage("shell", "-c", SHOW, DJANGO_DEBUG="true", **env)
    assert result.returncode == 0, result.stderr
    max_age, options = json.loads(result.stdout.strip().splitlines()[-1])
    return max_age, options


def test_the_pool_replaces_persistent_connections_on_postgresql():
    max_age, options = settings_with(DATABASE_URL=POSTGRES, DJANGO_DB_POOL="true")
    assert (max_age, options) == (0, {**PREPARED, "pool": {"min_size": 2, "max_size": 10}})
    pooled = {"DJANGO_DB_POOL": "true", "DJANGO_DB_POOL_SIZE": "4"}
    _, options = settings_with(DATABASE_URL=POSTGRES, **pooled)
    assert options["pool"] == {"min_size": 2, "max_size": 4}


def test_without_it_connections_persist_and_sqlite_never_pools():
    assert settings_with(DATABASE_URL=POSTGRES) == (60, PREPARED)
    assert "pool" not in settings_with(DATABASE_URL=SQLITE, DJANGO_DB_POOL="true")[1]


def test_postgresql_prepares_statements_unless_a_pooler_cannot_keep_them():
    assert settings_with(DATABASE_URL=POSTGRES, DJANGO_DB_PREPARED="false") == (60, {})
    assert settings_with(DATABASE_URL=SQLITE) == (60, {})  # nothing to prepare
