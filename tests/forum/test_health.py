import json
import os

import pytest
from django.db.utils import OperationalError
from django.test import override_settings

RESILIENT = "forum.cache.ResilientRedisCache"


def redis_settings(url: str):
    """Cache and channel layer on ``url``, for the ``with`` block only (tests/conftest.py
    clears the cache afterwards, which needs a reachable one)."""
    return override_settings(
        CACHES={"default": {"BACKEND": RESILIENT, "LOCATION": url}},
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [{"address": url}]},
            }
        },
    )


@pytest.mark.django_db
def test_healthz_reports_ok_without_redis(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    response = client.get("/healthz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["database"] == "ok"
    assert body["cache"].startswith("ok (in-process")
    assert body["channel_layer"].startswith("ok (in-process")


@pytest.mark.django_db
def test_healthz_names_the_cache_and_the_channel_layer_when_redis_is_unreachable(
    client, unused_tcp_port
):
    with redis_settings(f"redis://127.0.0.1:{unused_tcp_port}/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["failed"] == ["cache", "channel_layer"]
    assert body["cache"] == "unavailable: ConnectionError"
    assert body["channel_layer"] == "unavailable: ConnectionError"
    assert body["database"] == "ok"


@pytest.mark.django_db
def test_healthz_names_a_failing_database(client, settings, monkeypatch):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("forum.views.pages.connection.cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["failed"] == ["database"]
    assert body["database"] == "unavailable: OperationalError"


@pytest.mark.django_db
def test_healthz_checks_the_real_redis_when_configured(client):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: this run has no Redis to check")
    with redis_settings(url):
        response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    assert body["cache"] == "ok"
    assert body["channel_layer"] == "ok"
