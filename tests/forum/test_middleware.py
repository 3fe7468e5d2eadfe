"""Outages answer a clear 503 (templates/503.html, Retry-After, no traceback), pages that
can do without Redis keep working, and everything recovers by itself (forum/middleware.py,
forum/cache.py).

Redis: a private redis-server this module stops and starts again. PostgreSQL: a real
uvicorn whose DATABASE_URL points at a closed loopback port; the recovery half then opens
that port as a relay to the test database (PostgreSQL runs only).
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from csp.constants import NONCE
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cache import SessionStore
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.utils.functional import SimpleLazyObject

from forum import middleware, publishing
from forum.middleware import ContentSecurityPolicyMiddleware, MemberMiddleware
from forum.models import User

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
sys.path.insert(0, str(ROOT / "bench"))

from chat_fanout import PrivateRedis, free_port  # noqa: E402 (bench/, as test_delivery_faults)


def assert_clear_503(status: int, headers, body: bytes) -> None:
    assert status == 503
    assert headers["Retry-After"] == "30"
    assert b"Kinship is back in a moment" in body
    assert b"Traceback" not in body and b"Error" not in body


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI=true: not skipping)")
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    # Restored before tests/conftest.py clears the cache, which needs a reachable one.
    redis_settings = override_settings(
        CACHES={
            "default": {
                "BACKEND": "forum.cache.ResilientRedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
            }
        },
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": server.url}]},
            }
        },
    )
    try:
        with redis_settings:
            yield server
    finally:
        server.kill()


@pytest.mark.django_db
def test_pages_work_through_a_redis_outage_and_what_needs_redis_is_a_clear_503(
    private_redis, member, public_group, membership_of
):
    client = Client(raise_request_exception=False)
    client.force_login(member)  # the session is in the database and in Redis
    assert client.get("/").status_code == 200
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Still here", body="Day three."
    )
    visitor = Client(raise_request_exception=False)
    assert visitor.get(thread.get_absolute_url()).status_code == 200  # now in the cache

    private_redis.kill()
    # Pages read the session and the cache as misses and answer from the database.
    home = client.get("/")
    assert home.status_code == 200
    assert b"river" in home.content  # still signed in: the session came from the database
    assert client.get(f"/g/{public_group.slug}/").status_code == 200
    assert client.get("/groups/").status_code == 200
    # Thread pages, cached pages and rendered posts included, come from the database.
    for reader in (client, visitor):
        page = reader.get(thread.get_absolute_url())
        assert page.status_code == 200
        assert b"Day three." in page.content
    # Rate-limited reads count in this process meanwhile (moderation.ratelimit).
    assert client.get("/search/", {"q": "still"}).status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["failed"] == ["cache", "channel_layer"]
    # A logout must not leave a cached session behind: it waits for Redis, and says so.
    response = client.post("/accounts/logout/")
    assert_clear_503(response.status_code, response.headers, response.content)

    private_redis.start()
    assert client.get("/healthz").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert b"river" not in client.get("/").content


@pytest.mark.django_db
def test_an_outage_met_outside_the_view_is_a_503_too(client, monkeypatch, settings):
    # Saving the session happens in middleware, after the view: handler500 answers it.
    settings.DEBUG = False

    def database_gone(self, request, response):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(
        "django.contrib.sessions.middleware.SessionMiddleware.process_response", database_gone
    )
    client.raise_request_exception = False
    response = client.get("/help/")
    assert_clear_503(response.status_code, response.headers, response.content)


@pytest.mark.django_db
def test_a_bug_is_still_a_500(client, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr("forum.views.pages.selectors.crisis_resources", broken)
    client.raise_request_exception = False
    response = client.get("/help/")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


# --- PostgreSQL unreachable, against a real server ------------------------------------


class Relay:
    """Forwards a loopback port to PostgreSQL while open; closed, the port refuses."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - loopback
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def server_behind_relay(django_db_setup, django_db_blocker, tmp_path):
    """uvicorn with DATABASE_URL on a closed port; yields (base url, relay or None)."""
    with django_db_blocker.unblock():
        params = dict(connection.settings_dict)
    on_postgres = connection.vendor == "postgresql"
    port = free_port()
    database = params["NAME"] if on_postgres else "kinship"
    user = params.get("USER") or "postgres"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_DEBUG="true",  # loopback only; the 503 shows no traceback in debug either
        DATABASE_URL=f"postgres://{user}@127.0.0.1:{port}/{database}",
        DJANGO_CONN_MAX_AGE="0",
        KINSHIP_CHORES_SECONDS="0",
    )
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = params["PASSWORD"]
    web = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "forum.asgi:application", "--host", "127.0.0.1",
         "--port", str(web), "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{web}"
    deadline = time.monotonic() + 30
    while True:
        try:
            fetch(f"{base}/healthz")
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "uvicorn.log").read_text()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
    target = (params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432))
    relay = Relay(port, target) if on_postgres else None
    try:
        yield base, relay
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        if relay is not None:
            relay.close()


def test_database_outage_is_a_clear_503_and_recovers_by_itself(server_behind_relay):
    base, relay = server_behind_relay
    for path in ("/", "/groups/"):
        assert_clear_503(*fetch(base + path))
    status, _, body = fetch(f"{base}/healthz")
    assert status == 503
    assert b'"failed": ["database"]' in body

    if relay is None:
        pytest.skip("the recovery half needs PostgreSQL (DATABASE_URL is not postgres://)")
    relay.open()  # PostgreSQL is back
    status, _, body = fetch(f"{base}/healthz")
    assert status == 200, body
    status, _, body = fetch(f"{base}/groups/")
    assert status == 200
    assert b"Kinship is back in a moment" not in body


# --- the site's policy header (ContentSecurityPolicyMiddleware) -------------------------------


def _with_policy(middleware, request, response):
    middleware.process_request(request)
    return middleware.process_response(request, response)


def _directives(response) -> dict[str, list[str]]:
    """The policy header as directive -> sources; django-csp's order is not fixed."""
    parts = (part.split() for part in response["Content-Security-Policy"].split(";"))
    return {words[0]: words[1:] for words in parts if words}


def test_the_policy_header_is_the_one_django_csp_builds_and_is_built_once(rf, monkeypatch):
    expected = _with_policy(CSPMiddleware(HttpResponse), rf.get("/"), HttpResponse())
    ours = middleware.ContentSecurityPolicyMiddleware(HttpResponse)
    first = _with_policy(ours, rf.get("/"), HttpResponse())
    assert first["Content-Security-Policy"] == expected["Content-Security-Policy"]
    assert "script-src 'self'" in first["Content-Security-Policy"]
    built = []
    monkeypatch.setattr(middleware, "build_policy", lambda **parts: built.append(parts) or "x")
    again = _with_policy(ours, rf.get("/elsewhere/"), HttpResponse())
    assert again["Content-Security-Policy"] == expected["Content-Security-Policy"]
    assert built == []


def test_a_view_with_a_policy_of_its_own_gets_it_and_the_next_page_does_not(rf):
    ours = ContentSecurityPolicyMiddleware(HttpResponse)
    plain = _with_policy(ours, rf.get("/"), HttpResponse())["Content-Security-Policy"]
    own = HttpResponse()
    own._csp_update = {"img-src": ["data:"]}
    assert _directives(_with_policy(ours, rf.get("/"), own))["img-src"] == ["'self'", "data:"]
    exempt = HttpResponse()
    exempt._csp_exempt = True
    assert "Content-Security-Policy" not in _with_policy(ours, rf.get("/"), exempt)
    assert _with_policy(ours, rf.get("/"), HttpResponse())["Content-Security-Policy"] == plain


def test_a_nonce_taken_by_the_page_is_in_its_header_and_one_taken_after_is_an_error(rf, settings):
    directives = {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]}
    directives["script-src"] = ["'self'", NONCE]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}
    ours = ContentSecurityPolicyMiddleware(HttpResponse)
    assert (
        "nonce-" not in _with_policy(ours, rf.get("/"), HttpResponse())["Content-Security-Policy"]
    )
    request = rf.get("/")
    ours.process_request(request)
    nonce = str(request.csp_nonce)
    header = ours.process_response(request, HttpResponse())["Content-Security-Policy"]
    assert f"'nonce-{nonce}'" in header
    late = rf.get("/")
    _with_policy(ours, late, HttpResponse())
    with pytest.raises(CSPNonceError):
        str(late.csp_nonce)


def test_the_policy_follows_a_change_of_settings(rf, settings):
    ours = ContentSecurityPolicyMiddleware(HttpResponse)
    assert _directives(_with_policy(ours, rf.get("/"), HttpResponse()))["img-src"] == ["'self'"]
    changed = {"DIRECTIVES": {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]}}
    changed["DIRECTIVES"]["img-src"] = ["'none'"]
    settings.CONTENT_SECURITY_POLICY = changed
    assert _directives(_with_policy(ours, rf.get("/"), HttpResponse()))["img-src"] == ["'none'"]


# --- the member on the request (MemberMiddleware) -------------------------------------------


def _signed_in(rf, user=None):
    request = rf.get("/")
    request.session = SessionStore()
    if user is not None:
        request.session[SESSION_KEY] = str(user.pk)
        request.session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        request.session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    return request


def test_the_member_is_loaded_when_first_asked_for_and_then_is_request_user_itself(
    rf, member, django_assert_num_queries
):
    request = _signed_in(rf, member)
    with django_assert_num_queries(0):
        MemberMiddleware(HttpResponse).process_request(request)
    assert isinstance(request.user, SimpleLazyObject)
    lazy = request.user
    with django_assert_num_queries(1):
        assert lazy.is_authenticated
        assert request.user.pk == member.pk
    assert type(request.user) is User
    assert lazy.handle == member.handle  # a reference taken earlier still works
    assert request.auser is not None


def test_a_visitor_is_the_anonymous_user_itself(rf, db):

    request = _signed_in(rf)
    MemberMiddleware(HttpResponse).process_request(request)
    assert not request.user.is_authenticated
    assert type(request.user) is AnonymousUser
