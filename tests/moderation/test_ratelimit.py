"""moderation.ratelimit.hit: fixed windows counted on the shared cache.

Every call passes ``now=`` so windows are deterministic; the autouse fixture in
tests/conftest.py clears the cache between tests.
"""

import pytest
from django.test import override_settings

from moderation import ratelimit
from moderation.ratelimit import RateLimited, hit

WINDOW_START = 1_800_000_000.0  # a multiple of 60 and of 600


@pytest.fixture(autouse=True)
def limits(settings):
    settings.KINSHIP_RATE_LIMITS = {"reply": (3, 60), "thread": (1, 600), "edit": (2, 60)}
    return settings


def test_allows_up_to_the_limit_then_refuses():
    for offset in (0, 1, 2):
        hit("reply", key="7", now=WINDOW_START + offset)
    with pytest.raises(RateLimited) as excinfo:
        hit("reply", key="7", now=WINDOW_START + 15)
    assert excinfo.value.action == "reply"
    assert excinfo.value.retry_after == 45


def test_refusals_keep_counting_within_the_window():
    for _ in range(3):
        hit("reply", key="7", now=WINDOW_START)
    for _ in range(3):
        with pytest.raises(RateLimited):
            hit("reply", key="7", now=WINDOW_START + 30)


def test_window_rolls_over():
    for _ in range(3):
        hit("reply", key="7", now=WINDOW_START + 10)
    with pytest.raises(RateLimited):
        hit("reply", key="7", now=WINDOW_START + 59.9)
    # The next window starts afresh, with the full allowance.
    for _ in range(3):
        hit("reply", key="7", now=WINDOW_START + 60)
    with pytest.raises(RateLimited) as excinfo:
        hit("reply", key="7", now=WINDOW_START + 61)
    assert excinfo.value.retry_after == 59


def test_retry_after_is_at_least_one_second():
    for _ in range(3):
        hit("reply", key="7", now=WINDOW_START)
    with pytest.raises(RateLimited) as excinfo:
        hit("reply", key="7", now=WINDOW_START + 59.99)
    assert excinfo.value.retry_after == 1


def test_keys_are_independent():
    for _ in range(3):
        hit("reply", key="7", now=WINDOW_START)
    with pytest.raises(RateLimited):
        hit("reply", key="7", now=WINDOW_START)
    # Another member is not affected...
    for _ in range(3):
        hit("reply", key="8", now=WINDOW_START)
    # ...nor is another action by the same member.
    for _ in range(2):
        hit("edit", key="7", now=WINDOW_START)
    with pytest.raises(RateLimited):
        hit("edit", key="7", now=WINDOW_START)


def test_keys_that_share_a_prefix_do_not_collide():
    hit("thread", key="1", now=WINDOW_START)
    hit("thread", key="11", now=WINDOW_START)
    with pytest.raises(RateLimited):
        hit("thread", key="1", now=WINDOW_START)


def test_long_window_uses_its_own_length():
    hit("thread", key="7", now=WINDOW_START + 100)
    with pytest.raises(RateLimited) as excinfo:
        hit("thread", key="7", now=WINDOW_START + 400)
    assert excinfo.value.retry_after == 200
    hit("thread", key="7", now=WINDOW_START + 600)


def test_limit_follows_settings(settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "reply": (1, 60)}
    assert ratelimit.limit_for("reply") == (1, 60)
    hit("reply", key="7", now=WINDOW_START)
    with pytest.raises(RateLimited):
        hit("reply", key="7", now=WINDOW_START)


def test_unknown_action_is_a_programming_error():
    with pytest.raises(KeyError):
        hit("teleport", key="7", now=WINDOW_START)


@pytest.mark.parametrize(
    ("seconds", "wait"),
    [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (61, "2 minutes"), (600, "10 minutes")],
)
def test_message_names_the_wait(seconds, wait):
    error = RateLimited(action="reply", retry_after=seconds)
    assert error.message_wait == wait
    assert str(error) == f"That is faster than Kinship allows. Please wait {wait}."


def test_limits_still_hold_while_redis_is_unreachable(unused_tcp_port):
    # The shared counters are out of reach: this process counts on its own meanwhile,
    # so the limit still applies and nothing fails.
    unreachable = {
        "default": {
            "BACKEND": "forum.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{unused_tcp_port}/0",
        }
    }
    key = f"outage-{unused_tcp_port}"
    with override_settings(CACHES=unreachable):
        for offset in (0, 1, 2):
            hit("reply", key=key, now=WINDOW_START + offset)
        with pytest.raises(RateLimited) as excinfo:
            hit("reply", key=key, now=WINDOW_START + 30)
    assert excinfo.value.retry_after == 30
    assert ratelimit._local.get(f"rl:reply:{key}:{int(WINDOW_START)}") == 4
