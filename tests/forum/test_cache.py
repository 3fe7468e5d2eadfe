"""forum.cache.LocalFirstCache: a bounded copy in each process in front of the shared cache."""

import os
import uuid

import pytest
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError

from forum import cache as cache_module
from forum.cache import LocalFirstCache, Recent, read_ahead, read_earlier


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    return now


def test_a_value_is_served_from_the_process_then_from_the_shared_cache():
    local = LocalFirstCache(size=4, ttl=10)
    local.set("k", "v", 60)
    cache.delete("k")
    assert local.get("k") == "v"  # this process's copy
    other_process = LocalFirstCache(size=4, ttl=10)
    assert other_process.get("k") is None
    cache.set("k", "from another worker", 60)
    assert other_process.get("k") == "from another worker"


def test_a_local_copy_lives_ttl_seconds_at_most(clock):
    local = LocalFirstCache(size=4, ttl=10)
    local.set("k", "v", 60)
    cache.delete("k")
    clock[0] += 9.9
    assert local.get("k") == "v"
    clock[0] += 0.2
    assert local.get("k") is None


def test_the_least_recently_used_entries_go_first():
    local = LocalFirstCache(size=2, ttl=10)
    local.set_many({"a": 1, "b": 2}, 60)
    assert local.get("a") == 1  # now "b" is the least recently used
    local.set("c", 3, 60)
    cache.clear()
    assert local.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}


def test_copies_keep_one_request_from_changing_the_next_ones_value():
    local = LocalFirstCache(size=4, ttl=10, copies=True)
    local.set("rows", [{"support_count": 1}], 60)
    cache.delete("rows")
    first = local.get("rows")
    first[0]["viewer_supports"] = True
    assert local.get("rows") == [{"support_count": 1}]


def test_while_redis_is_down_a_read_is_a_miss(monkeypatch):
    def down(keys):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(cache_module.cache, "get_many", down)
    local = LocalFirstCache(size=4, ttl=10)
    assert local.get_many(["k"]) == {}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
def test_a_tally_counts_from_one_in_one_round_trip_and_expires(monkeypatch):
    from forum.cache import ResilientRedisCache

    shared = ResilientRedisCache(os.environ["REDIS_URL"], {})
    key = f"tally-{uuid.uuid4().hex}"
    client = shared._cache.get_client(write=True)
    sent = []
    real = type(client).pipeline
    monkeypatch.setattr(
        type(client), "pipeline", lambda self, **kw: sent.append(kw) or real(self, **kw)
    )
    assert [shared.tally(key, 30) for _ in range(3)] == [1, 2, 3]
    assert len(sent) == 3  # one pipeline (one round trip) per count
    assert shared.get(key) == 3  # what add() and incr() would have stored
    assert 0 < client.ttl(shared.make_and_validate_key(key)) <= 30
    shared.delete(key)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
def test_a_tally_can_bring_other_values_in_its_round_trip(redis_commands):
    key = f"tally-{uuid.uuid4().hex}"
    cache.set_many({"token": "abc", "number": 5}, 60)
    cache.delete("absent")
    redis_commands.clear()
    count, found = cache.tally_and_read(key, 30, ["token", "number", "absent"])
    assert (count, found) == (1, {"token": "abc", "number": 5})  # as get_many reads them
    assert cache.tally_and_read(key, 30, [])[0] == 2
    assert redis_commands == []  # each a pipeline: one round trip, no command on its own
    cache.delete(key)


def test_recent_forgets_the_least_recently_used_first():
    recent = Recent(size=2)
    recent.set("a", 1)
    recent.set("b", 2)
    assert recent.get("a") == 1  # now the most recent
    recent.set("c", 3)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (1, None, 3)
    recent.clear()
    assert recent.get("a") is None and recent.get("c") is None


def test_recent_with_a_ttl_forgets_an_entry_that_long_after_it_was_set(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    recent = Recent(size=2, ttl=10)
    recent.set("a", (1, 2))
    now[0] += 9.9
    assert recent.get("a") == (1, 2)  # read, not renewed
    now[0] += 0.2
    assert recent.get("a") is None
    recent.set("a", 3)
    assert recent.get("a") == 3


@pytest.fixture
def redis_commands(monkeypatch):
    import redis

    sent = []
    real = redis.Redis.execute_command

    def spy(self, *args, **options):
        sent.append(args[0])
        return real(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", spy)
    return sent


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
def test_keys_read_ahead_are_read_in_one_round_trip(redis_commands):
    cache.set_many({"a": 1, "b": 2}, 60)
    cache.delete("absent")
    redis_commands.clear()
    with read_ahead(["a", "b", "absent"]):
        assert cache.get("a") == 1
        assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
        assert redis_commands == ["MGET"]
        # What Redis lacked is still asked for: another process may have stored it since.
        cache.set("absent", 3, 60)
        assert cache.get("absent") == 3
    assert cache.get("a") == 1
    assert redis_commands == ["MGET", "SET", "GET", "GET"]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (set in CI)")
@pytest.mark.parametrize(
    "write",
    [
        lambda: cache.set("a", 9, 60),
        lambda: cache.set_many({"a": 9}, 60),
        lambda: cache.delete("a") and cache.add("a", 9, 60),
        lambda: cache.incr("a", 8),
        lambda: cache.delete_many(["a"]) or cache.set("a", 9, 60),
    ],
)
def test_a_key_written_in_the_block_is_read_again(write):
    cache.set("a", 1, 60)
    with read_ahead(["a"]):
        write()
        assert read_earlier("a") == (True, None)  # not what was read ahead any more
        assert cache.get("a") == 9
        assert cache.get_many(["a"]) == {"a": 9}


def test_with_redis_down_nothing_is_read_ahead_and_reads_are_misses(monkeypatch):
    from forum.cache import ResilientRedisCache

    shared = ResilientRedisCache("redis://127.0.0.1:9/0", {"OPTIONS": {"socket_timeout": 0.2}})
    monkeypatch.setattr(cache_module, "cache", shared)
    with read_ahead(["a"]):
        assert shared.get("a", "fallback") == "fallback"
        assert read_earlier("a") == (False, None)  # no answer: nobody may take it as absent


def test_read_earlier_says_what_was_read_ahead_and_what_the_cache_lacked():
    cache.set_many({"a": 1, "b": 2}, 60)
    cache.delete("absent")
    assert read_earlier("a") == (False, None)  # no block
    with read_ahead(["a", "absent"]):
        assert read_earlier("a") == (True, 1)
        assert read_earlier("absent") == (True, None)
        assert read_earlier("b") == (False, None)  # not asked for
    with read_ahead(["absent"]):  # the cache found nothing: as good as no answer
        assert read_earlier("absent") == (False, None)
