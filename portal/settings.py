"""Porchlight's one settings module.

Everything is read from the environment with small typed helpers. Each service has an
embedded default so a fresh machine with only Python runs the whole thing: SQLite, the
in-memory channel layer, eager Celery, console email and SMS.
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a development default).")
    SECRET_KEY = "dev-only-not-secret-porchlight"  # noqa: S105 - only ever with DEBUG on

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Absolute base for links that leave the site (emails, SMS, printed login links).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",  # makes runserver an ASGI server with WebSockets
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "anymail",
    "portal",
    "messaging",
    "notifications",
    "crm_events",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal_shell",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool("DB_POOL", True):
    # A pool of connections per process: under ASGI each request runs in its own thread and
    # Channels closes connections around every consumer call, so without a pool every request
    # and every live frame opened a new connection (about 8 ms each; bench/live_latency).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django requires 0 with a pool
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2),
        "max_size": env_int("DB_POOL_MAX", 20),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so the live ASGI server the browser tests start in another process
    # sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Rendered customer views of thread entries (messaging/rendering.py). Per process on
    # purpose: a hit costs no network round trip, and the contents are deterministic.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": 20000},
    },
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis when configured, otherwise tasks run inline (eager) so a laptop needs nothing.
# (An explicit host: a bare "memory://" makes kombu warn on every eager task.)
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queueing happens after commit inside a web request: with Redis down it must give up fast
# (the Delivery row is queued and the sweeper re-queues it) rather than hang the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacknowledged messages come back after this long. Tasks are never given countdowns
    # anywhere near it (notifications.actions.MAX_COUNTDOWN); later work waits as a row.
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sesame.backends.ModelBackend",
]
# Magic links: ten minutes, and once only (sesame ties one-time tokens to last_login).
SESAME_MAX_AGE = 10 * 60
SESAME_ONE_TIME = True
SESAME_TOKEN_NAME = "sesame"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "messages"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` puts files for deployment (docker-compose sets it); unset in development.
STATIC_ROOT = env_str("STATIC_ROOT") or None
# WhiteNoise serves static files from the ASGI app itself (daphne serves nothing else).
# Finders let it serve straight from the source folders, so no collectstatic step is needed
# to run; production may still run collectstatic for compressed, cache-busted copies.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"

# Email: console unless an anymail ESP backend is named, e.g.
# EMAIL_BACKEND=anymail.backends.postmark.EmailBackend with ANYMAIL_POSTMARK_SERVER_TOKEN.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Porchlight <portal@porchlight.localhost>")
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}
# requests needs a number; the environment gives strings.
ANYMAIL["REQUESTS_TIMEOUT"] = float(ANYMAIL.get("REQUESTS_TIMEOUT", 10))

TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "https://api.twilio.com")

VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY")
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY")
# The contact push services may use about our pushes (the VAPID "sub" claim).
VAPID_SUBJECT = env_str("VAPID_SUBJECT", f"mailto:{parseaddr(DEFAULT_FROM_EMAIL)[1]}")

# Notifications (notifications/): the Delivery outbox, its providers and its sweeper.
# Email to a customer waits this long, and is skipped if they read the message meanwhile.
EMAIL_NOTIFICATION_DELAY_SECONDS = env_int("EMAIL_NOTIFICATION_DELAY_SECONDS", 120)
# Domain of the per-thread reply-to addresses; by default DEFAULT_FROM_EMAIL's domain.
EMAIL_REPLY_DOMAIN = env_str("EMAIL_REPLY_DOMAIN")
# Push endpoints we agree to POST to (host or parent domain). Subscriptions come from
# browsers, i.e. from users: anything else is refused, so the server cannot be aimed at
# arbitrary URLs. Loopback hosts listed here may use http (the fake push service in tests).
WEB_PUSH_ENDPOINT_HOSTS = env_list(
    "WEB_PUSH_ENDPOINT_HOSTS",
    [
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    ],
)
WEB_PUSH_TTL_SECONDS = 24 * 60 * 60
# Seconds each provider call (Twilio, the ESP, a push service) may take.
NOTIFICATIONS_PROVIDER_TIMEOUT = env_float("NOTIFICATIONS_PROVIDER_TIMEOUT", 10.0)
NOTIFICATIONS_MAX_ATTEMPTS = 8
NOTIFICATIONS_RETRY_BASE_SECONDS = 20
NOTIFICATIONS_RETRY_MAX_SECONDS = 30 * 60
# A delivery in "sending" longer than this lost its worker; the sweeper sends it again.
NOTIFICATIONS_SENDING_LEASE_SECONDS = 5 * 60
# A due delivery whose task has not run this long after it should have is queued again.
NOTIFICATIONS_QUEUED_GRACE_SECONDS = 2 * 60
NOTIFICATIONS_SWEEP_SECONDS = env_int("NOTIFICATIONS_SWEEP_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {
        "task": "notifications.sweep",
        "schedule": float(NOTIFICATIONS_SWEEP_SECONDS),
        # A sweep that waited longer than its period is superseded by the next one.
        "options": {"expires": float(NOTIFICATIONS_SWEEP_SECONDS)},
    }
}

# Messages longer than this are refused everywhere they enter (portal, SMS, email, CRM).
MESSAGE_MAX_LENGTH = 5000

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The twilio client logs every request and response at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# CRM (crm_events/): the event API's Standard Webhooks secret, "whsec_<base64 key>". Unset
# (and DEBUG off), the API refuses every request and logs why.
CRM_WEBHOOK_SECRET = env_str("CRM_WEBHOOK_SECRET")
if not CRM_WEBHOOK_SECRET and DEBUG:
    # Development only (like SECRET_KEY's), so `make run` can be tried with docs/crm-api.md.
    CRM_WEBHOOK_SECRET = "whsec_cG9yY2hsaWdodC10ZXN0LWtleS0zMi1ieXRlcy1sb25n"  # noqa: S105
# How often the CRM automations (day-before reminders, follow-ups) look for due work.
CRM_AUTOMATIONS_SECONDS = env_int("CRM_AUTOMATIONS_SECONDS", 300)
CELERY_BEAT_SCHEDULE["crm-automations"] = {
    "task": "crm_events.run_automations",
    "schedule": float(CRM_AUTOMATIONS_SECONDS),
    "options": {"expires": float(CRM_AUTOMATIONS_SECONDS)},
}
