"""One Redis client per connection pool for Django's Redis cache backend.

Django's RedisCacheClient builds a new ``redis.Redis`` for every cache operation, and
with redis-py 5 and later that construction (its response-callback tables) costs more
than the round trip itself: close to a millisecond on a busy machine, several times on
every page a member sees (the session, the authority epoch). A client is safe to share
between threads; its pool hands each command a connection. A RedisCache subclass uses it
by setting ``self._class = SharedClientRedisCacheClient`` (see SharedClientRedisCache).

The client is shared by the whole process, not kept per cache object: Django holds one
cache object per async context (asgiref's Local), so each open websocket, whose consumer
runs in a task of its own, had its own client, pool and Redis connection, several KiB and
a file descriptor per socket for as long as it stayed open (bench/README.md, "Idle
connections").
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class SharedClientRedisCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        server = self._servers[index]
        shared = (server, self._client, self._pool_class, repr(sorted(self._pool_options.items())))
        client = _clients.get(shared)
        if client is None:
            with _clients_lock:
                client = _clients.get(shared)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[shared] = self._client(connection_pool=pool)
        self._pools[index] = client.connection_pool
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
