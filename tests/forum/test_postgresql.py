"""forum.postgresql: a dropped connection is found without a round trip, and replaced."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.test import Client

from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the backend is PostgreSQL's (the CI database)")
    yield
    connection.close_if_unusable_or_obsolete()  # a dropped one, before the tables are flushed


def statements_sent(monkeypatch) -> list[str]:
    """What the raw connection is asked to run from now on."""
    sent: list[str] = []
    raw = connection.connection
    real_cursor = raw.cursor

    def cursor(*args, **kwargs):
        real = real_cursor(*args, **kwargs)
        real_execute = real.execute

        def execute(query, *rest, **named):
            sent.append(str(query))
            return real_execute(query, *rest, **named)

        real.execute = execute
        return real

    monkeypatch.setattr(raw, "cursor", cursor)
    return sent


def terminate_from_elsewhere() -> None:
    """End the test connection's server session, as a restart or an administrator would."""
    pid = connection.connection.info.backend_pid
    settings = connection.get_connection_params()
    settings.pop("cursor_factory", None)
    settings.pop("prepare_threshold", None)
    with psycopg.connect(**settings, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not connection.connection.closed:
        time.sleep(0.01)  # the socket turns readable as the server closes it
        if not connection.is_usable():
            return


def test_an_idle_connection_is_usable_without_a_statement(monkeypatch):
    connection.ensure_connection()
    sent = statements_sent(monkeypatch)
    assert connection.is_usable()
    assert sent == []


def test_a_connection_the_server_dropped_is_unusable_without_a_statement(monkeypatch):
    connection.ensure_connection()
    terminate_from_elsewhere()
    sent = statements_sent(monkeypatch)
    assert not connection.is_usable()
    assert sent == []


def test_a_connection_inside_a_transaction_is_checked_with_a_statement(monkeypatch):
    connection.ensure_connection()
    connection.set_autocommit(False)
    try:
        connection.cursor().execute("SELECT 1")  # the transaction is open
        sent = statements_sent(monkeypatch)
        assert connection.is_usable()
        assert sent == ["SELECT 1"]
    finally:
        connection.rollback()
        connection.set_autocommit(True)


def test_the_page_after_the_server_dropped_the_connection_is_served(settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_MAX_AGE"] = 60
    member = make_user("river")
    client = Client()
    client.force_login(member)
    assert client.get("/groups/").status_code == 200
    assert connection.connection is not None  # kept for the next request
    terminate_from_elsewhere()
    close_old_connections()  # as at the start of every request (the test client skips it)
    assert client.get("/groups/").status_code == 200
