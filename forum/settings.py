"""Kinship settings: one module, every deploy-specific value from the environment.

Development defaults are safe to run on a laptop; production values are
documented in docs/operations.md. With DEBUG off a real secret key is required.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is off; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "forum",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "forum.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "forum.csrf.HeldCookieMiddleware",
    "forum.middleware.MemberMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so its process_exception runs first: an outage is a 503, not a 500.
    "forum.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "forum.urls"
WSGI_APPLICATION = "forum.wsgi.application"
ASGI_APPLICATION = "forum.asgi.application"

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
                "forum.context_processors.site",
                "forum.csrf.context_processor",
            ],
        },
    },
]

# SQLite file by default (the embedded development database); PostgreSQL in production.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# Django's backend, with a health check that needs no round trip (forum.postgresql).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "forum.postgresql"
# Over ASGI each request runs in a thread of its own, so a persistent connection is never
# reused and every request would connect anew: DJANGO_DB_POOL=true lends connections from a
# pool in each process instead (PostgreSQL; bench/README.md, "Pages", measures both).
if env_bool("DJANGO_DB_POOL", False) and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(os.environ.get("DJANGO_DB_POOL_SIZE", "10")),
    }
# PostgreSQL plans each statement anew unless it is prepared, and planning the member's
# statement cost about as much as running it (bench/README.md, "What changed, and what found
# it"): values are sent apart from the SQL, and a connection prepares a statement on its
# second use. A pooler in transaction mode cannot keep prepared statements:
# DJANGO_DB_PREPARED=false there.
if env_bool("DJANGO_DB_PREPARED", True) and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=1
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis carries the cache and rate-limit counters when configured; without it a
# single development process uses local memory.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Misses rather than errors while Redis is unreachable (forum/cache.py), and
            # bounded waits, so an outage costs pages a moment, not a hang or a 500.
            "BACKEND": "forum.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("KINSHIP_CACHE_PREFIX", "kinship"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The channel layer carries chat broadcasts between worker processes. It is a doorbell:
# every chat change is stored first and clients resume from the database, so either
# channels-redis layer is safe. pubsub is the default: it never dropped a broadcast under
# load and costs less per frame (bench/README.md); KINSHIP_CHANNEL_LAYER=core picks the other.
if REDIS_URL:
    _LAYERS = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _LAYERS[os.environ.get("KINSHIP_CHANNEL_LAYER", "pubsub")],
            # redis-py's default 5 s read timeout equals the core layer's blocking
            # BZPOPMIN wait: after 5 quiet seconds receive() would raise and drop the
            # socket. The layer's reads wait as long as they need.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                # Sites (or test workers) sharing one Redis keep apart by prefix.
                "prefix": os.environ.get("KINSHIP_CHANNEL_PREFIX", "kinship:layer"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Seconds between heartbeats on chat sockets, and between authority re-checks.
KINSHIP_CHAT_HEARTBEAT_SECONDS = float(os.environ.get("KINSHIP_CHAT_HEARTBEAT_SECONDS", "20"))
KINSHIP_CHAT_RECHECK_SECONDS = 2.0
KINSHIP_CHAT_HISTORY = 50
# A chat socket whose client takes no frame for this long (it stopped reading) is closed
# with 1013 instead of buffering broadcasts for it without end; it resumes on reconnect.
KINSHIP_CHAT_SLOW_SEND_SECONDS = float(os.environ.get("KINSHIP_CHAT_SLOW_SEND_SECONDS", "10"))
# Threads (each with its own database connection) that run a worker's chat writes side by
# side: a write mostly waits for PostgreSQL, and one thread left each worker waiting in
# turn (bench/README.md, "Saturation"). SQLite takes one writer at a time anyway.
KINSHIP_CHAT_WRITE_THREADS = int(
    os.environ.get(
        "KINSHIP_CHAT_WRITE_THREADS", "4" if "postgresql" in DATABASES["default"]["ENGINE"] else "1"
    )
)

# Django's cached_db, with a signed-in session's key naming its member (forum.sessions).
SESSION_ENGINE = "forum.sessions"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_SAMESITE = "Lax"
# The CSRF cookie lasts until the browser closes (forum.csrf).
CSRF_COOKIE_AGE = None

AUTH_USER_MODEL = "forum.User"
# MemberBackend loads a signed-in member with what every page asks of them in one query;
# ModelBackend stays for the sessions it signed in (sign-up named it until 2026-11-26).
AUTHENTICATION_BACKENDS = [
    "forum.backends.MemberBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "kinship@localhost")

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security headers. The page never loads anything from another origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}


# Kinship's own knobs. Rate limits are (count, seconds) per member.
def rate(name: str, default: str) -> tuple[int, int]:
    """A limit written as "count/seconds", e.g. KINSHIP_CHAT_RATE_LIMIT=10/10."""
    count, seconds = os.environ.get(name, default).split("/")
    return int(count), int(seconds)


KINSHIP_RATE_LIMITS = {
    "chat": rate("KINSHIP_CHAT_RATE_LIMIT", "10/10"),
    "thread": (5, 600),
    "reply": (10, 60),
    "edit": (20, 60),
    "profile": (10, 60),
    "flag": (20, 3600),
    "appeal": (5, 3600),
    # Requests for a direct conversation (forum.conversations.request_conversation).
    "dm_request": (5, 3600),
    # Searches (forum.views.search), per member or, signed out, per address: full-text
    # queries are the costliest reads a visitor can ask for.
    "search": (30, 60),
    # A member's download of all their data, and attempts to confirm their password to delete
    # their account (forum.privacy): the fullest read there is, and no password guessing.
    "export": (5, 3600),
    "account_delete": (5, 3600),
    # Per client address: sign-up attempts and password-reset requests; reset links to
    # one e-mail address (the same whether or not it has an account).
    "signup": rate("KINSHIP_SIGNUP_RATE_LIMIT", "10/3600"),
    "password_reset": rate("KINSHIP_PASSWORD_RESET_RATE_LIMIT", "5/3600"),
    "password_reset_email": (3, 3600),
    # Per trust level (moderation.trust): "<action>.<level>" replaces "<action>" for
    # members at that level; levels without a variant use the plain limit.
    "thread.0": (2, 600),
    "reply.0": (5, 60),
    "chat.0": (5, 10),
    "thread.1": (3, 600),
    "thread.3": (10, 600),
    "reply.3": (20, 60),
    "chat.3": (15, 10),
}
# Logging in (forum.login_throttle): this many failures for one handle from one address
# within the seconds given lock that pair out for the cool-off; other addresses still may.
KINSHIP_LOGIN_LOCKOUT = rate("KINSHIP_LOGIN_LOCKOUT", "5/900")
KINSHIP_LOGIN_COOLOFF_SECONDS = int(os.environ.get("KINSHIP_LOGIN_COOLOFF_SECONDS", "900"))
# Flags from this many different members hide content until a moderator reviews it
# (crisis concerns never hide anything); queue items older than this many minutes
# are highlighted.
KINSHIP_FLAGS_TO_HIDE = int(os.environ.get("KINSHIP_FLAGS_TO_HIDE", "3"))
KINSHIP_QUEUE_WAIT_MINUTES = int(os.environ.get("KINSHIP_QUEUE_WAIT_MINUTES", "60"))
KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
# "Hold my post for an hour before it goes out" (forum.publishing.hold_thread/hold_reply).
KINSHIP_HOLD_MINUTES = int(os.environ.get("KINSHIP_HOLD_MINUTES", "60"))
# How often each ASGI worker does what falls due with time (forum/asgi.py): held posts go
# out, overdue live sessions are finished. 0 leaves it to the release_held_posts and
# sweep_sessions commands (cron) and to members' own page views.
KINSHIP_CHORES_SECONDS = float(os.environ.get("KINSHIP_CHORES_SECONDS", "30"))
# Sessions unused and notifications older than this many days are purged (forum.privacy,
# manage.py purge_expired_data, and the chores loop above).
try:
    KINSHIP_RETENTION_DAYS = int(os.environ.get("KINSHIP_RETENTION_DAYS", "90"))
except ValueError:
    KINSHIP_RETENTION_DAYS = 0
if KINSHIP_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("KINSHIP_RETENTION_DAYS must be a whole number of days, 1 or more.")

# Trust (moderation.trust). Members earn levels 1 member, 2 regular and 3 trusted from days
# since joining, posts and messages published, and at most so many removed by moderators;
# a sanction within KINSHIP_TRUST_SANCTION_DAYS keeps a member at level 1 at most. Links
# from members below KINSHIP_TRUST_LINK_LEVEL are held for review (allowlisted domains
# pass); a new member's first KINSHIP_NEW_MEMBER_HOLDS posts and messages wait for
# approval; KINSHIP_TRUST_MENTIONS caps mentions per post by level. KINSHIP_TRUST_RULES
# false switches all of it off (the domain blocklist still applies).
KINSHIP_TRUST_RULES = env_bool("KINSHIP_TRUST_RULES", True)
KINSHIP_TRUST_LEVELS = {
    1: {"days": 2, "posts": 3},
    2: {"days": 30, "posts": 30, "removed": 2},
    3: {"days": 90, "posts": 100, "removed": 0},
}
KINSHIP_TRUST_SANCTION_DAYS = 90
KINSHIP_TRUST_LINK_LEVEL = int(os.environ.get("KINSHIP_TRUST_LINK_LEVEL", "1"))
KINSHIP_NEW_MEMBER_HOLDS = int(os.environ.get("KINSHIP_NEW_MEMBER_HOLDS", "2"))
KINSHIP_TRUST_MENTIONS = {0: 2, 1: 5, 2: 10, 3: 10}
# Members below this level send no direct-message requests (leaders and moderators of a
# group they share with the recipient always may); new members are where harassment and
# predatory contact start.
KINSHIP_TRUST_DM_LEVEL = int(os.environ.get("KINSHIP_TRUST_DM_LEVEL", "1"))

# Live sessions: a session nobody ended is over this long after its planned end, and the
# sweep (forum.live.sweep_sessions) finishes it: attendance closed, transcript policy applied.
KINSHIP_SESSION_GRACE_MINUTES = int(os.environ.get("KINSHIP_SESSION_GRACE_MINUTES", "60"))
# Weekly series are scheduled this many occurrences ahead.
KINSHIP_SESSION_SERIES_WEEKS = 12
# Who said they are coming is reminded this long before a session starts (forum.notify).
KINSHIP_SESSION_REMINDER_MINUTES = int(os.environ.get("KINSHIP_SESSION_REMINDER_MINUTES", "60"))
# Peer mentoring (forum.mentoring): who may offer to mentor (days since joining, and days
# since a recorded recovery date), and how many mentees a mentor takes at once.
KINSHIP_MENTOR_MIN_DAYS = int(os.environ.get("KINSHIP_MENTOR_MIN_DAYS", "90"))
KINSHIP_MENTOR_MIN_RECOVERY_DAYS = int(os.environ.get("KINSHIP_MENTOR_MIN_RECOVERY_DAYS", "365"))
KINSHIP_MENTOR_MAX_MENTEES = int(os.environ.get("KINSHIP_MENTOR_MAX_MENTEES", "5"))
# The site's public address, for links in e-mails sent outside a request (digests).
KINSHIP_SITE_URL = os.environ.get("KINSHIP_SITE_URL", "http://localhost:8000")
