"""The Redis cache keeps one client per connection pool instead of one per operation."""

from forum.redis_client import SharedClientRedisCache, SharedClientRedisCacheClient


def test_each_operation_reuses_the_same_client_and_pool():
    cache = SharedClientRedisCache("redis://127.0.0.1:1/0", {})
    client = cache._cache
    assert isinstance(client, SharedClientRedisCacheClient)
    first = client.get_client(write=True)
    assert client.get_client() is first
    assert client.get_client(write=True) is first
    assert first.connection_pool is client._pools[0]


def test_replicas_each_get_their_own_client():
    cache = SharedClientRedisCache("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0", {})
    client = cache._cache
    primary, replica = client.get_client(write=True), client.get_client(write=False)
    assert primary is not replica
    assert replica.connection_pool.connection_kwargs["port"] == 2
    assert client.get_client(write=False) is replica


def test_cache_objects_of_different_contexts_share_one_client():
    # Django makes a cache object per async context: one per open websocket.
    first = SharedClientRedisCache("redis://127.0.0.1:1/0", {})
    second = SharedClientRedisCache("redis://127.0.0.1:1/0", {})
    assert first is not second
    assert first._cache.get_client() is second._cache.get_client()
    other_server = SharedClientRedisCache("redis://127.0.0.1:3/0", {})
    assert other_server._cache.get_client() is not first._cache.get_client()
    other_options = SharedClientRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"db": 2}})
    assert other_options._cache.get_client() is not first._cache.get_client()
