"""Django's Redis cache, with one connection pool per process.

Django keeps cache objects per async context (django.core.cache.caches is an asgiref Local),
so under ASGI every request builds a new RedisCache, and each builds its own connection pool:
every request that touched the cache (the send limit, sessions) opened a new TCP connection
to Redis and said hello (Django ticket #35651, open). Profiled, that was a fifth of a send.
Here the pools live for the process, keyed by server and options, and so does one client
per pool: Django builds a redis.Redis object for every cache call, which is 3% of a send
(redis-py's clients are thread-safe; the connections come from the pool).

`incr` is one round trip instead of Django's two (EXISTS, then INCRBY): every send counts
against its rate limit (portal/throttles.py) this way.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple, object] = {}
_clients: dict[int, object] = {}
_incr_scripts: dict[int, object] = {}
_pools_lock = threading.Lock()


# Django's incr in one script: a missing key is an error (nil here, ValueError below), an
# existing one is incremented. Atomic too: between Django's EXISTS and INCRBY the key could
# expire, and INCRBY then made it again with no expiry at all.
_INCR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


class SharedPoolClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], self._pool_class, repr(sorted(self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(
                        self._servers[index], **self._pool_options
                    )
        return pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None:
            client = _clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        script = _incr_scripts.get(id(client))
        if script is None:
            script = _incr_scripts[id(client)] = client.register_script(_INCR)
        value = script(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolClient
