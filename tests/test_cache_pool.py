"""The Redis cache shares one connection pool and one client per process (portal/cache.py):
Django builds a cache object per async context, i.e. per request under ASGI."""

from __future__ import annotations

import pytest
from django.core.cache import caches

pytestmark = pytest.mark.redis


def test_every_cache_object_of_a_process_uses_one_pool_and_one_client(settings):
    # The production cache (tests otherwise keep one in memory, see tests/conftest.py)
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "portal.cache.SharedPoolRedisCache", "LOCATION": settings.REDIS_URL},
    }
    first = caches.create_connection("default")
    second = caches.create_connection("default")  # as a second request would get
    assert first is not second
    first.set("pool-check", 1)
    assert second.get("pool-check") == 1
    client = first._cache.get_client(write=True)
    assert second._cache.get_client(write=True) is client
    assert client.connection_pool is second._cache._get_connection_pool(True)
    first.delete("pool-check")


def test_incr_counts_an_existing_key_keeps_its_expiry_and_refuses_a_missing_one(settings):
    # portal/cache.py runs Django's EXISTS-then-INCRBY as one script; the rate limits rely
    # on Django's meaning of it (django-ratelimit's add, then incr).
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "portal.cache.SharedPoolRedisCache", "LOCATION": settings.REDIS_URL},
    }
    cache = caches.create_connection("default")
    cache.delete("incr-check")
    with pytest.raises(ValueError):
        cache.incr("incr-check")
    assert cache.get("incr-check") is None  # a missing key is not made
    cache.add("incr-check", 1, 60)
    assert (cache.incr("incr-check"), cache.incr("incr-check", 5)) == (2, 7)
    assert cache.decr("incr-check") == 6
    client = cache._cache.get_client(write=True)
    assert 0 < client.ttl(cache.make_and_validate_key("incr-check")) <= 60
    cache.delete("incr-check")
