"""Settings come from the environment; production values pass `check --deploy`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k" * 20 + "production-secret-for-the-deploy-check-0123456789",
    "DJANGO_ALLOWED_HOSTS": "kinship.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://kinship.example.org",
}


def test_deploy_check_passes_with_production_values():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_fails_at_start_with_a_clear_message():
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": ""}
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_mode_runs_without_a_secret_key():
    result = run_manage("check", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr


# What a real deploy sets: no DJANGO_DEBUG at all, a secret key and the host names.
DEPLOY = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_DEBUG"}


def test_deploy_check_passes_with_debug_left_unset():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_send_hsts_and_secure_cookies():
    show = (
        "from django.conf import settings as s; import json; print(json.dumps([s.DEBUG, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_REFERRER_POLICY]))"
    )
    result = run_manage("shell", "-c", show, **DEPLOY)
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]  # after the shell's own banner
    debug, hsts, subdomains, redirect, session_secure, csrf_secure, referrer = json.loads(last_line)
    assert debug is False
    assert hsts >= 60 * 60 * 24 * 365
    assert subdomains and redirect and session_secure and csrf_secure
    assert referrer in {"same-origin", "no-referrer"}
