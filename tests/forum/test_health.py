import json

import pytest
from django.db.utils import OperationalError


@pytest.mark.django_db
def test_healthz_reports_ok_when_database_answers(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"].startswith("not configured")


@pytest.mark.django_db
def test_healthz_names_unreachable_redis(client, settings, unused_tcp_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["failed"] == ["redis"]
    assert body["redis"].startswith("unavailable")
    assert body["database"] == "ok"


@pytest.mark.django_db
def test_healthz_names_failing_database(client, settings, monkeypatch):
    settings.REDIS_URL = ""

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("forum.views.pages.connection.cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["failed"] == ["database"]
    assert body["database"] == "unavailable: OperationalError"


@pytest.mark.django_db
def test_healthz_checks_the_real_redis_when_configured(client, settings):
    import os

    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: this run has no Redis to check")
    settings.REDIS_URL = url
    response = client.get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content)["redis"] == "ok"
