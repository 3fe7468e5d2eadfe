"""Settings come from the environment; production values pass `check --deploy`."""

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
