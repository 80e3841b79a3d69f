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
