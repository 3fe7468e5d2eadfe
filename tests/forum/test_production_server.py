"""The app as deployed: DEBUG off, uvicorn, collected static files served by WhiteNoise."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, headers: dict[str, str] | None = None):
    """(status, case-insensitive headers, body)."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("production")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="test-only-" + "s" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
    )
    env.pop("REDIS_URL", None)
    python = sys.executable
    for args in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120)  # noqa: S603
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [python, "-m", "uvicorn", "forum.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            fetch(f"{base}/healthz")
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("uvicorn did not start: " + server.stdout.read().decode())
    yield base
    server.terminate()
    server.wait(timeout=10)


def test_pages_carry_security_headers(production_server):
    status, headers, body = fetch(f"{production_server}/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert b"Need help now?" in body


def test_https_answers_carry_hsts(production_server):
    # uvicorn trusts X-Forwarded-Proto from its loopback proxy, as behind a TLS terminator.
    _, headers, _ = fetch(f"{production_server}/", {"X-Forwarded-Proto": "https"})
    hsts = headers["Strict-Transport-Security"]
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains; preload", hsts), hsts
    assert int(re.search(r"\d+", hsts).group()) >= 60 * 60 * 24 * 365


def test_static_files_are_served_by_the_app_with_hashed_names(production_server):
    _, _, body = fetch(f"{production_server}/")
    stylesheet = re.search(rb'href="(/static/css/kinship\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet, "the page links the hashed stylesheet"
    status, headers, css = fetch(production_server + stylesheet.group(1).decode())
    assert status == 200
    assert b"--accent" in css
    assert "max-age=315360000" in headers["Cache-Control"]


def test_no_page_loads_anything_from_another_origin(production_server):
    # Links a reader may follow are fine; what the page itself loads must be local.
    loads = re.compile(
        rb'<(?:script|img|iframe|link|source|video|audio)\b[^>]*?(?:src|href)="([^"]+)"'
    )
    for path in ("/", "/groups/", "/help/", "/accounts/login/", "/accounts/signup/"):
        _, _, body = fetch(production_server + path)
        sources = loads.findall(body)
        assert sources, path
        foreign = [s for s in sources if not s.startswith(b"/") or s.startswith(b"//")]
        assert foreign == [], (path, foreign)


def test_unknown_page_is_a_friendly_404(production_server):
    status, _, body = fetch(f"{production_server}/g/no-such-group/")
    assert status == 404
    assert b"We could not find that page" in body
