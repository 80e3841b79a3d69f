"""`/health/`: 200 when the database, the cache, the channel layer and the broker all
answer; 503 naming what failed otherwise. (tests/deploy/test_shape.py asks it on the real
PostgreSQL and Redis, through the proxy.)"""

from __future__ import annotations

import pytest

from portal.celery import app

# Nothing listens on port 1: a refused connection, at once.
NOWHERE = "redis://127.0.0.1:1/0"


def checks(response) -> dict[str, str]:
    return {name.split("(")[0]: result for name, result in response.json().items()}


def test_a_well_process_answers_200_with_each_check(client, db):
    response = client.get("/health/")
    assert response.status_code == 200
    assert checks(response) == {
        "Database": "OK",
        "Cache": "OK",
        "ChannelLayer": "OK",
        "Broker": "OK",
    }
    assert "no-store" in response["Cache-Control"]


def test_plain_text_on_request(client, db):
    response = client.get("/health/?format=text")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "Database(alias='default'): OK" in response.content.decode()


def test_the_health_check_is_not_redirected_to_https(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/").status_code == 200
    assert client.get("/login/").status_code == 301


@pytest.fixture
def broker_down():
    # The check opens a connection of its own (no pool) to the configured URL.
    saved = app.conf.broker_url
    app.conf.broker_url = NOWHERE
    yield
    app.conf.broker_url = saved


def test_an_unreachable_broker_is_a_503_that_names_it(client, db, broker_down):
    response = client.get("/health/")
    assert response.status_code == 503
    result = checks(response)
    assert result["Broker"].startswith("Unavailable: broker")
    assert result["Database"] == result["Cache"] == result["ChannelLayer"] == "OK"


def test_an_unreachable_channel_layer_is_a_503_that_names_it(client, db, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [NOWHERE]},
        }
    }
    response = client.get("/health/")
    assert response.status_code == 503
    assert checks(response)["ChannelLayer"].startswith("Unavailable")
    assert checks(response)["Database"] == "OK"


def test_an_unreachable_cache_is_a_503_that_names_it(client, db, settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": NOWHERE},
    }
    response = client.get("/health/")
    assert response.status_code == 503
    assert checks(response)["Cache"] != "OK"
