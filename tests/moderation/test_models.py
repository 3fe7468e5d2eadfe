"""moderation.models.SharedVersion: the tokens a write reads together."""

import os

import pytest
from django.core.exceptions import PermissionDenied
from redis.exceptions import ConnectionError as RedisConnectionError

from forum import publishing
from forum.models import ChatRoom
from moderation import models
from moderation.models import (
    CONTEXT_NOTES_VERSION,
    DOMAIN_RULES_VERSION,
    WATCHED_PHRASES_VERSION,
    SharedVersion,
)
from tests.conftest import join, make_group, make_user

VERSION_KEYS = {version.key for version in SharedVersion.every}


class CountingCache:
    """The cache, with every read of a version's token counted."""

    def __init__(self, real) -> None:
        self.real = real
        self.gets: list[str] = []
        self.get_manys: list[set[str]] = []
        self.fail_get_many = False

    def get(self, key, default=None):
        if key in VERSION_KEYS:
            self.gets.append(key)
        return self.real.get(key, default)

    def get_many(self, keys):
        self.get_manys.append(set(keys))
        if self.fail_get_many:
            raise RedisConnectionError("Redis is down")
        return self.real.get_many(keys)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def counting(monkeypatch) -> CountingCache:
    for version in SharedVersion.every:  # each token made already, as on a running site
        version.current()
    counting = CountingCache(models.cache)
    monkeypatch.setattr(models, "cache", counting)
    return counting


def test_every_version_is_known_to_read_together():
    assert {WATCHED_PHRASES_VERSION, DOMAIN_RULES_VERSION, CONTEXT_NOTES_VERSION} <= set(
        SharedVersion.every
    )


@pytest.mark.django_db
def test_a_chat_message_reads_its_three_tokens_in_one_round_trip(counting, settings, monkeypatch):
    settings.KINSHIP_RATE_LIMITS = {k: (10**6, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group, river = make_group("open-circle"), make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    publishing.publish_chat_message(author=river, room=room, body="Hi", client_id="c0")
    counting.gets.clear()
    counting.get_manys.clear()

    arrivals = []
    real_arrived = SharedVersion.arrived.__func__
    monkeypatch.setattr(
        SharedVersion,
        "arrived",
        classmethod(lambda cls, found: arrivals.append(set(found)) or real_arrived(cls, found)),
    )

    publishing.publish_chat_message(author=river, room=room, body="Hello", client_id="c1")

    # With Redis, in the rate limit's round trip (moderation.ratelimit); otherwise alone.
    assert counting.get_manys + arrivals == [VERSION_KEYS]
    assert counting.gets == []


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
@pytest.mark.django_db
def test_with_redis_the_tokens_come_with_the_rate_limits_count(settings, monkeypatch):
    import redis

    settings.KINSHIP_RATE_LIMITS = {k: (10**6, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group, river = make_group("open-circle"), make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    for version in SharedVersion.every:
        version.current()
    sent = []
    real_execute = redis.Redis.execute_command
    real_pipeline = redis.client.Pipeline.execute

    def command(self, *args, **options):
        sent.append([args[0]])
        return real_execute(self, *args, **options)

    def pipeline(self, *args, **kwargs):
        sent.append([each[0][0] for each in self.command_stack])
        return real_pipeline(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    publishing.publish_chat_message(author=river, room=room, body="Hello", client_id="c1")
    # The whole write's Redis: one round trip, the rate limit's count and the tokens.
    assert sent == [["SET", "INCRBY", "MGET"]]


@pytest.mark.django_db
def test_a_write_refused_before_it_screens_reads_no_tokens(counting, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10**6, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group, river = make_group("open-circle"), make_user("river")
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    with pytest.raises(PermissionDenied):  # not a member
        publishing.publish_chat_message(author=river, room=room, body="Hi", client_id="c0")
    assert counting.get_manys == [] and counting.gets == []


def test_outside_a_write_each_token_is_read_alone(counting):
    WATCHED_PHRASES_VERSION.current()
    assert counting.gets == [WATCHED_PHRASES_VERSION.key] and counting.get_manys == []


def test_an_enclosing_write_s_tokens_serve_the_writes_it_calls(counting):
    with SharedVersion.read_together():
        with SharedVersion.read_together():
            DOMAIN_RULES_VERSION.current()
        WATCHED_PHRASES_VERSION.current()
    assert len(counting.get_manys) == 1 and counting.gets == []


def test_a_change_made_during_the_write_counts_at_once(counting):
    with SharedVersion.read_together():
        before = WATCHED_PHRASES_VERSION.current()
        WATCHED_PHRASES_VERSION.bump()
        after = WATCHED_PHRASES_VERSION.current()
    assert after != before
    assert after == WATCHED_PHRASES_VERSION.current()  # the token now in the cache


def test_a_token_no_one_has_made_yet_is_made_once(counting):
    models.cache.delete(CONTEXT_NOTES_VERSION.key)
    with SharedVersion.read_together():
        first = CONTEXT_NOTES_VERSION.current()
        assert CONTEXT_NOTES_VERSION.current() == first
    assert first is not None and counting.gets == [CONTEXT_NOTES_VERSION.key]


def test_while_redis_is_down_each_token_is_read_alone(counting):
    counting.fail_get_many = True
    with SharedVersion.read_together():
        token = WATCHED_PHRASES_VERSION.current()
    assert token == WATCHED_PHRASES_VERSION.current()
    assert counting.gets.count(WATCHED_PHRASES_VERSION.key) == 2
