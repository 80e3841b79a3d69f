"""Porchlight's one settings module.

Everything is read from the environment through django-environ; a value it cannot read (a
boolean spelled `ture`, a port that is not a number) stops the process with the variable's
name instead of quietly meaning something else. Each service has an embedded default so a
fresh machine with only Python runs the whole thing: SQLite, the in-memory channel layer,
eager Celery, console email and SMS.

A git-ignored `.env` beside manage.py (written by `make run`) is read first, without
overriding the real environment; `PORCHLIGHT_ENV_FILE` names another file, or none when empty
(the test suite sets it empty, so a developer's `.env` never changes what tests see).
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class Env(environ.Env):
    """django-environ with booleans that refuse what they do not understand."""

    TRUE = frozenset({"1", "true", "yes", "on"})
    FALSE = frozenset({"0", "false", "no", "off", ""})

    def bool(self, var, default=environ.Env.NOTSET):
        raw = self.str(var, default="" if default is self.NOTSET else None)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value not in self.TRUE | self.FALSE:
            raise ImproperlyConfigured(
                f"{var}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off."
            )
        return value in self.TRUE


env = Env()
ENV_FILE = os.environ.get("PORCHLIGHT_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a development default).")
    SECRET_KEY = "dev-only-not-secret-porchlight"  # noqa: S105 - only ever with DEBUG on

# Rotation (docs/operations.md): the previous key keeps signing-in sessions and CSRF tokens
# valid while it is listed here.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Absolute base for links that leave the site (emails, SMS, printed login links).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",  # makes runserver an ASGI server with WebSockets
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.forms",  # the widgets' own templates, for FORM_RENDERER below
    "channels",
    "csp",
    "django_htmx",
    "template_partials",
    "django_ratelimit",
    "anymail",
    "portal",
    "messaging",
    "notifications",
    "crm_events",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files answer here, before anything below: no session, no CSP, their own caching.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.security.ContentSecurityPolicyMiddleware",
    "portal.security.PrivatePagesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Kept devices: rotate the session key and slide its 90 days (portal/devices.py).
    "portal.devices.KeptSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A view that finds the database unreachable answers 503 with the reason, not 500.
    "portal.outages.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "portal.urls"
# Widgets render through TEMPLATES, so templates/ can override one (the admin's split
# date/time widget, which left its inputs without labels).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
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

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env.bool("DB_POOL", default=True):
    # A pool of connections per process: under ASGI each request runs in its own thread and
    # Channels closes connections around every consumer call, so without a pool every request
    # and every live frame opened a new connection (about 8 ms each; bench/live_latency).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django requires 0 with a pool
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=2),
        "max_size": env.int("DB_POOL_MAX", default=20),
        "timeout": 10,
    }
# How the one process shares its core (one GIL) between kinds of work (portal/asgi.py,
# messaging/consumers.py; docs/performance.md, "Goal 1"): at most WEB_WRITE_THREADS requests
# that change something (POST and the other unsafe methods) and WEB_READ_THREADS that only
# read run at once; the rest wait their turn on the event loop instead of contending for the
# GIL, so ten customers sending back to back cannot starve the staff list's GET. Live
# sockets' database work and renders run in LIVE_THREADS threads of their own (not Channels'
# single database thread, and not behind requests). Each running thread holds one database
# connection: keep their sum under DB_POOL_MAX.
WEB_WRITE_THREADS = env.int("WEB_WRITE_THREADS", default=3)
WEB_READ_THREADS = env.int("WEB_READ_THREADS", default=4)
LIVE_THREADS = env.int("LIVE_THREADS", default=4)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default serves two people chatting (web requests and WebSocket read marks
    # at once): WAL lets readers and a writer work together, a writer waits for another
    # instead of failing with "database is locked", and IMMEDIATE takes the write lock when a
    # transaction begins, so a reader that turns writer cannot deadlock with another.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so the live ASGI server the browser tests start in another process
    # sees the same test database; beside the database it tests (.test-db.sqlite3 for the
    # default), so that two test runs on two databases never share one.
    _database_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {
        "NAME": str(_database_file.with_name(f".test-{_database_file.name}"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

CACHES = {
    # Rate-limit counters (portal/throttles.py) must be shared by every web process: Redis
    # when there is one; this process's memory under `make run` (one process).
    "default": (
        {"BACKEND": "portal.cache.SharedPoolRedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Rendered customer views of thread entries (messaging/rendering.py). Per process on
    # purpose: a hit costs no network round trip, and the contents are deterministic.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": 20000},
    },
}

# Live updates between processes. Redis Pub/Sub by default: a broadcast is one PUBLISH per
# group, which Redis hands to each process once and the process to its sockets, where the
# list-based layer ("lists") wrote one message per open socket (docs/performance.md). Both
# deliver at most once; pages resume from their last entry, so nothing is lost either way.
CHANNEL_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "lists": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYER = env.str("CHANNEL_LAYER", default="pubsub")


def channel_layer_prefix(redis_url: str) -> str:
    """The channel layer's names, one set per Redis database. Redis Pub/Sub channels belong to
    the whole server, not to a database: two deployments (or a bench and a test run) on one
    Redis server with different database numbers would otherwise hear each other's
    broadcasts, whose entry ids then mean other entries here (bench.live found it: a frame
    rendered from a foreign event was shared under an entry id this site used next)."""
    return f"asgi{urlsplit(redis_url).path.strip('/') or '0'}:"


if CHANNEL_LAYER not in CHANNEL_LAYER_BACKENDS:
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be one of {sorted(CHANNEL_LAYER_BACKENDS)}")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": CHANNEL_LAYER_BACKENDS[CHANNEL_LAYER],
            "CONFIG": {"hosts": [REDIS_URL], "prefix": channel_layer_prefix(REDIS_URL)},
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
    # No unacknowledged set in Redis: kombu's emulation of acks costs the worker's one
    # consumer thread two Redis round trips a task (on record, on ack), and under 64 busy
    # threads each waits for the GIL; that fed the pool 60 tasks a second (bench.deliveries,
    # docs/performance.md "dlv"). What it bought is covered sooner: work that must not be lost
    # is a row whose sweeper re-queues it within minutes (deliveries, inbound media, CRM
    # webhooks, announcements), where an unacknowledged message came back after an hour; a
    # warm shutdown still puts the worker's reserved tasks back on the queue; a sign-in
    # link or code lost with a killed worker is asked for again (an hour late it was stale).
    "ack_emulation": False,
    # With ack emulation on, unacknowledged messages would come back after this long.
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

# Sign-in codes (portal/codes.py): six digits by SMS or email, ten minutes, one use, dead
# after five wrong tries.
SIGN_IN_CODE_MAX_AGE = 10 * 60
SIGN_IN_CODE_MAX_FAILURES = 5
# Notification links (portal/entry_links.py): one use, a day. A day covers "read it tonight or
# at breakfast"; past it the link lands on the sign-in page with the address filled in.
NOTIFICATION_LINK_MAX_AGE = 24 * 3600
# A session opened by a notification link reaches the thread only, for at most this long.
THREAD_SESSION_MAX_AGE = 12 * 3600
# "Keep me signed in on this device": 90 days from the last visit; the session's key is
# replaced at most once a day while it is used (portal/devices.py).
KEEP_SIGNED_IN_MAX_AGE = 90 * 24 * 3600
KEEP_SIGNED_IN_ROTATE_SECONDS = 24 * 3600

LOGIN_URL = "login"
# "home" sends each person to their own start page: staff to the project list, customers to
# their messages.
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Rate limits (portal/throttles.py), as django-ratelimit rates: count / period.
RATE_LOGIN_LINKS_PER_CLIENT = env.str("RATE_LOGIN_LINKS_PER_CLIENT", default="20/h")
RATE_LOGIN_LINKS_PER_ADDRESS = env.str("RATE_LOGIN_LINKS_PER_ADDRESS", default="5/h")
RATE_STAFF_LOGIN_FAILURES = env.str("RATE_STAFF_LOGIN_FAILURES", default="5/15m")
RATE_STAFF_LOGIN_FAILURES_PER_CLIENT = env.str(
    "RATE_STAFF_LOGIN_FAILURES_PER_CLIENT", default="20/15m"
)
RATE_SENDS_PER_USER = env.str("RATE_SENDS_PER_USER", default="30/m")
# None are expected (a browser test fails on any); a page that breaks sends a few at most.
RATE_CSP_REPORTS_PER_CLIENT = env.str("RATE_CSP_REPORTS_PER_CLIENT", default="20/m")

# Sign-in codes (issue 20). Sends cost an SMS each, so they are capped per number, per
# client and for the whole site (SMS pumping: a bot asking codes for premium numbers).
# Guesses: 5 wrong tries kill one code; these cap the tries across codes, numbers and clients,
# so that brute force over many numbers from many clients still gets ~1 in 10^6 per try.
RATE_SIGN_IN_CODES_PER_ADDRESS = env.str("RATE_SIGN_IN_CODES_PER_ADDRESS", default="5/h")
RATE_SIGN_IN_CODES_PER_CLIENT = env.str("RATE_SIGN_IN_CODES_PER_CLIENT", default="10/h")
RATE_SIGN_IN_CODES_GLOBAL = env.str("RATE_SIGN_IN_CODES_GLOBAL", default="300/h")
RATE_CODE_GUESSES_PER_ADDRESS = env.str("RATE_CODE_GUESSES_PER_ADDRESS", default="10/h")
RATE_CODE_GUESSES_PER_CLIENT = env.str("RATE_CODE_GUESSES_PER_CLIENT", default="30/h")
RATE_CODE_GUESSES_GLOBAL = env.str("RATE_CODE_GUESSES_GLOBAL", default="1000/h")
RATELIMIT_USE_CACHE = "default"
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit lists only django-redis's Redis cache; Django's own RedisCache also
    # increments atomically (INCR).
    "django_ratelimit.W001",
    # SQLite ignores an index's INCLUDE columns (messaging.Entry's Insights indexes): there
    # they are plain indexes, which is all a development database needs.
    "models.W040",
]
if not REDIS_URL:
    # One process (make run, tests): its own memory is the only place counters need to be.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

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
# Where `collectstatic` puts files for deployment (the image sets it); unset in development.
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None
# WhiteNoise serves static files from the ASGI app itself. Deployed (STATIC_ROOT set), only
# what collectstatic wrote: compressed (gzip, Brotli) copies with a hash in each name, which
# WhiteNoise serves with a ten-year immutable Cache-Control. Without STATIC_ROOT (make run,
# tests) it serves straight from the source folders, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = not STATIC_ROOT
# Uploaded files (business logos; photos on thread entries) go through Django's storage API
# and are served only by views that decide who may see them: MEDIA_URL is never routed, and
# no static route may reach MEDIA_ROOT (checked below).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_ROOT
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
for _static in [*STATICFILES_DIRS, *([STATIC_ROOT] if STATIC_ROOT else [])]:
    if MEDIA_ROOT.is_relative_to(Path(_static).resolve()):
        raise ImproperlyConfigured(
            f"MEDIA_ROOT ({MEDIA_ROOT}) is inside {_static}, which is served as static files: "
            "uploads would be public. Put it elsewhere."
        )

# Email: console unless an anymail ESP backend is named, e.g.
# EMAIL_BACKEND=anymail.backends.postmark.EmailBackend with ANYMAIL_POSTMARK_SERVER_TOKEN.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Porchlight <portal@porchlight.localhost>"
)
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}
# Several user:password pairs, comma-separated, while rotating: anymail accepts any of them.
if "," in ANYMAIL.get("WEBHOOK_SECRET", ""):
    ANYMAIL["WEBHOOK_SECRET"] = [pair.strip() for pair in ANYMAIL["WEBHOOK_SECRET"].split(",")]
# requests needs a number; the environment gives strings.
ANYMAIL["REQUESTS_TIMEOUT"] = float(ANYMAIL.get("REQUESTS_TIMEOUT", 10))

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
# Where Twilio keeps the photos of texts it received (MediaUrlN, and the CDN it redirects to):
# the only hosts we fetch media from.
TWILIO_MEDIA_HOSTS = env.list(
    "TWILIO_MEDIA_HOSTS", default=["api.twilio.com", "media.twiliocdn.com", "twiliocdn.com"]
)

VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
# The contact push services may use about our pushes (the VAPID "sub" claim).
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default=f"mailto:{parseaddr(DEFAULT_FROM_EMAIL)[1]}")

# Notifications (notifications/): the Delivery outbox, its providers and its sweeper.
# Email to a customer waits this long, and is skipped if they read the message meanwhile.
EMAIL_NOTIFICATION_DELAY_SECONDS = env.int("EMAIL_NOTIFICATION_DELAY_SECONDS", default=120)
# Domain of the per-thread reply-to addresses; by default DEFAULT_FROM_EMAIL's domain.
EMAIL_REPLY_DOMAIN = env.str("EMAIL_REPLY_DOMAIN", default="")
# Push endpoints we agree to POST to (host or parent domain). Subscriptions come from
# browsers, i.e. from users: anything else is refused, so the server cannot be aimed at
# arbitrary URLs. Loopback hosts listed here may use http (the fake push service in tests).
WEB_PUSH_ENDPOINT_HOSTS = env.list(
    "WEB_PUSH_ENDPOINT_HOSTS",
    default=[
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "push.apple.com",
        "notify.windows.com",
    ],
)
WEB_PUSH_TTL_SECONDS = 24 * 60 * 60
# Seconds each provider call (Twilio, the ESP, a push service) may take.
NOTIFICATIONS_PROVIDER_TIMEOUT = env.float("NOTIFICATIONS_PROVIDER_TIMEOUT", default=10.0)
NOTIFICATIONS_MAX_ATTEMPTS = 8
NOTIFICATIONS_RETRY_BASE_SECONDS = 20
NOTIFICATIONS_RETRY_MAX_SECONDS = 30 * 60
# A delivery in "sending" longer than this lost its worker; the sweeper sends it again.
# (From the environment so the deploy rehearsal, deploy/test/run.sh, can wait seconds.)
NOTIFICATIONS_SENDING_LEASE_SECONDS = env.int("NOTIFICATIONS_SENDING_LEASE_SECONDS", default=5 * 60)
# A due delivery whose task has not run this long after it should have is queued again.
NOTIFICATIONS_QUEUED_GRACE_SECONDS = env.int("NOTIFICATIONS_QUEUED_GRACE_SECONDS", default=2 * 60)
NOTIFICATIONS_SWEEP_SECONDS = env.int("NOTIFICATIONS_SWEEP_SECONDS", default=30)
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
# Files attached to a message (photos by MMS or from the reply box, email attachments).
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENTS_PER_MESSAGE = 5
# What one customer's files (portal uploads, MMS, email attachments) may take in all, kept
# for ever: about a hundred full-size phone photos. Past it, files are refused and words
# still go through (docs/notifications.md).
ATTACHMENT_BYTES_PER_CUSTOMER = env.int("ATTACHMENT_BYTES_PER_CUSTOMER", default=500 * 1024 * 1024)
# An inbound email's payload (its attachments base64-encoded) may be at most this large.
# Postmark takes up to 35 MB of attachments per inbound email, about 47 MB once base64 in its
# JSON: every email it can send gets through (the files over 5 MB are then left out, named).
INBOUND_EMAIL_MAX_BYTES = env.int("INBOUND_EMAIL_MAX_BYTES", default=50 * 1024 * 1024)

# Sessions are read from the cache (Redis when there is one) and written through to the
# database: a request costs a cache GET rather than a query, and nothing is lost with Redis.
# portal/sessions.py: Django's cached_db, where an unreachable cache is a miss, not a 500.
SESSION_ENGINE = "portal.sessions"

# -- Production: HTTPS, the reverse proxy, security headers ------------------------------------
# Deployed behind a TLS-terminating proxy (deploy/Caddyfile), SITE_URL is https and every
# default below turns on; `make run` and the tests (http, or DEBUG) leave them off.
SERVES_HTTPS = not DEBUG and SITE_URL.startswith("https://")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=SERVES_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The addresses of the reverse proxy (comma-separated IPs or CIDRs; the one variable that
# both the web server, for X-Forwarded-For/-Proto, and Django read). Unset, nobody's
# forwarding headers are believed. Set, Django takes X-Forwarded-Proto as the scheme: the
# web processes must then be reachable only through that proxy, which overwrites the header
# (docker-compose.yml publishes no port of theirs).
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=[])
if FORWARDED_ALLOW_IPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SERVES_HTTPS)
# Load balancers and the compose health check ask a web process directly, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if SERVES_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Only a request to be listed: nothing happens until the domain is submitted to the browsers'
# preload list (docs/operations.md says when not to).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response Django makes (django-csp; portal/security.py).
# Scripts only from our own origin or carrying the page's nonce, styles only from our own
# files: no inline script, no eval, no inline style (htmx's own indicator styles and eval are
# turned off in templates/base.html). Violations are reported to /csp-report/ and logged.
_site = urlsplit(SITE_URL)
CSP_REPORT_PATH = "/csp-report/"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        # WebSockets: 'self' covers ws(s) of this origin in current browsers; the explicit
        # origin is for those that predate CSP level 3.
        "connect-src": [SELF, f"{'wss' if _site.scheme == 'https' else 'ws'}://{_site.netloc}"],
        "manifest-src": [SELF],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": [CSP_REPORT_PATH],
        "report-to": "csp",
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The twilio client logs every request and response at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# CRM (crm_events/): the event API's Standard Webhooks secret, "whsec_<base64 key>". Unset,
# the API refuses every request and logs why (`make run` writes a random one to .env).
CRM_WEBHOOK_SECRET = env.str("CRM_WEBHOOK_SECRET", default="")
# How often the CRM automations (day-before reminders, follow-ups) look for due work.
CRM_AUTOMATIONS_SECONDS = env.int("CRM_AUTOMATIONS_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["crm-automations"] = {
    "task": "crm_events.run_automations",
    "schedule": float(CRM_AUTOMATIONS_SECONDS),
    "options": {"expires": float(CRM_AUTOMATIONS_SECONDS)},
}
# Sign-in rows that guard nothing any more: expired codes, old spent links, expired devices.
CELERY_BEAT_SCHEDULE["portal-forget-sign-ins"] = {
    "task": "portal.forget_spent_sign_ins",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}

# Outbound events to the CRM (crm_events/outbound/, docs/crm-api.md): besides the endpoints
# staff enter in the admin, one given here. The URL is the operator's choice (http is allowed
# on loopback, for development and tests); the secret is "whsec_<base64 key>", or two of them
# comma-separated while the CRM changes keys (every event is then signed with both). A URL
# without a secret sends nothing: unsigned events are never sent.
CRM_OUTBOUND_URL = env.str("CRM_OUTBOUND_URL", default="")
CRM_OUTBOUND_SECRET = env.list("CRM_OUTBOUND_SECRET", default=[])
CRM_OUTBOUND_TIMEOUT = env.float("CRM_OUTBOUND_TIMEOUT", default=10.0)
# Retries: exponential from the base, doubled per attempt up to the cap, with full jitter, for
# this many days after the event; an endpoint failing every attempt for the hours given is
# disabled with a note to staff (its events wait for it).
CRM_OUTBOUND_RETRY_BASE_SECONDS = 30
CRM_OUTBOUND_RETRY_MAX_SECONDS = 4 * 3600
CRM_OUTBOUND_RETRY_DAYS = 3
CRM_OUTBOUND_DISABLE_AFTER_HOURS = 24
# A Retry-After longer than this is read as this (a CRM cannot park events for a week).
CRM_OUTBOUND_RETRY_AFTER_MAX_SECONDS = 24 * 3600
CRM_OUTBOUND_SENDING_LEASE_SECONDS = 5 * 60
# How long each attempt stays in the admin's delivery log.
CRM_OUTBOUND_LOG_DAYS = 30
CRM_OUTBOUND_SWEEP_SECONDS = env.int("CRM_OUTBOUND_SWEEP_SECONDS", default=30)
CELERY_BEAT_SCHEDULE["crm-webhooks"] = {
    "task": "crm_events.sweep_webhooks",
    "schedule": float(CRM_OUTBOUND_SWEEP_SECONDS),
    "options": {"expires": float(CRM_OUTBOUND_SWEEP_SECONDS)},
}

# Announcements (crm_events/announcements, docs/crm.md): each batch appends this many
# recipients' entries; the next batch waits until the deliveries the last one made have had
# time to go at each channel's rate (messages per second; 0 = no limit). Twilio sends about 1
# SMS per second from a long code, so 2,000 customers by SMS take about 33 minutes.
ANNOUNCEMENT_BATCH_SIZE = env.int("ANNOUNCEMENT_BATCH_SIZE", default=50)
ANNOUNCEMENT_SEND_RATES = {
    "sms": env.float("ANNOUNCEMENT_SMS_PER_SECOND", default=1.0),
    "email": env.float("ANNOUNCEMENT_EMAIL_PER_SECOND", default=10.0),
    "push": env.float("ANNOUNCEMENT_PUSH_PER_SECOND", default=50.0),
}
# Longest announcement: in SMS segments when any recipient has a phone, else in characters
# (MESSAGE_MAX_LENGTH, the bound on every message).
ANNOUNCEMENT_MAX_SMS_SEGMENTS = env.int("ANNOUNCEMENT_MAX_SMS_SEGMENTS", default=10)
# How often the sweeper queues a batch whose task was lost (Redis down, worker killed).
ANNOUNCEMENT_SWEEP_SECONDS = env.int("ANNOUNCEMENT_SWEEP_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["crm-announcements"] = {
    "task": "crm_events.sweep_announcements",
    "schedule": float(ANNOUNCEMENT_SWEEP_SECONDS),
    "options": {"expires": float(ANNOUNCEMENT_SWEEP_SECONDS)},
}
