"""Settings for the OMS.

One module for every environment. Every production difference is an environment
variable read through django-environ's typed helpers; a variable that is not set
falls back to the embedded default (SQLite, a server-less Celery broker), which
is what `make demo` and a quick `make test` use.
"""

import sys
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Where the embedded default keeps its state (database, Celery queue, beat schedule).
VAR_DIR = Path(env.str("OMS_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY, or the contents of SECRET_KEY_FILE; a public key only where no one
    else can reach the data it protects.

    The rule: as soon as DATABASE_URL is set (anything but the embedded SQLite
    database), a start without a key of its own refuses to run, unless DEBUG is on
    (a developer's machine) or the test suite is running (it signs with a key of
    its own). The embedded demo keeps its public default, which `check --deploy`
    flags."""
    key = env.str("SECRET_KEY", default="")
    key_file = env.str("SECRET_KEY_FILE", default="")
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"SECRET_KEY_FILE is {key_file}, which cannot be read ({error.strerror})."
            ) from None
        if not key:
            raise ImproperlyConfigured(f"SECRET_KEY_FILE is {key_file}, which is empty.")
    if key:
        return key
    if "pytest" in sys.modules:
        return "test-suite-only-key-signs-nothing-outside-the-tests"
    if env.str("DATABASE_URL", default="") and not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Outside the embedded demo (DATABASE_URL is set) the OMS "
            "will not start with the public default key, which would let anyone forge "
            "sessions: set SECRET_KEY, or SECRET_KEY_FILE to a file that holds it. Make one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return "django-insecure-embedded-default-key-never-use-in-production"


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "config.views.csrf_failure"

# Behind TLS (production), cookies are secure and HTTP is redirected.
HTTPS = env.bool("OMS_HTTPS", default=False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env.bool("OMS_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("OMS_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts, styles, fonts and requests from this site only; no inline script or style,
# no eval, no plugins, no framing (oms.middleware.ContentSecurityPolicyMiddleware).
OMS_CONTENT_SECURITY_POLICY = env.str(
    "OMS_CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
)
# The vendored API docs style elements from their scripts; Redoc searches in a worker.
OMS_CSP_PATH_EXCEPTIONS = {
    "/api/docs/": {"style-src": "'self' 'unsafe-inline'"},
    "/api/redoc/": {"style-src": "'self' 'unsafe-inline'", "worker-src": "'self' blob:"},
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    # Ours, lowest layer first (docs/architecture.md, "Layers").
    "oms",
    "audit",
    "portfolios",
    "trading",
    "compliance",
    "orchestration",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "oms.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "oms.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "oms.context_processors.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'oms.sqlite3'}",
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the embedded database: wait for
    # a lock rather than fail, and take the write lock at BEGIN so that a
    # transaction never has to upgrade a read lock (SQLite's deadlock).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery ------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # An unacknowledged task goes back to the queue after this long (a worker
    # killed mid-task); the order status sweep settles what it left meanwhile.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": env.int("OMS_CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded default: kombu's filesystem transport, a real broker that
    # needs no server (queues are folders of message files under var/).
    _celery_dir = VAR_DIR / "celery"
    for _folder in ("queue", "processed", "control"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "store_processed": False,
        # Broadcast exchanges (celery's pidbox) default to ./control in the
        # working directory; keep them with the rest of the embedded state.
        "control_folder": str(_celery_dir / "control"),
    }
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues are named per concern so that workers can be scaled out per concern.
CELERY_TASK_ROUTES = {
    "orchestration.tasks.*": {"queue": "rebalance"},
    "trading.tasks.route_*": {"queue": "routing"},
    "trading.tasks.apply_*": {"queue": "executions"},
    "trading.tasks.reconcile_*": {"queue": "reconciliation"},
    "trading.tasks.expire_*": {"queue": "reconciliation"},
}
OMS_QUEUES = ["default", "rebalance", "routing", "executions", "reconciliation"]
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "purge-idempotency-keys": {
        "task": "oms.tasks.purge_idempotency_keys",
        "schedule": 6 * 3600.0,
    },
    # A route whose send task was lost (the broker was down at commit) is sent again.
    "resend-unsent-routes": {
        "task": "trading.tasks.resend_unsent_routes",
        "schedule": env.float("OMS_RESEND_UNSENT_EVERY", default=30.0),
    },
    # Routes only their broker can settle are asked their status.
    "route-status-sweep": {
        "task": "trading.tasks.reconcile_route_status",
        "schedule": env.float("OMS_STATUS_SWEEP_EVERY", default=30.0),
    },
    # Day blocks end at their exchange's close (and good-till-date ones at their date).
    "expire-day-blocks": {
        "task": "trading.tasks.expire_day_blocks",
        "schedule": env.float("OMS_DAY_END_EVERY", default=60.0),
    },
    # Stored drift older than its prices (or never computed) is refreshed in chunks.
    "refresh-stale-drift": {
        "task": "portfolios.tasks.drift_refresh_stale",
        "schedule": env.float("OMS_DRIFT_REFRESH_EVERY", default=60.0),
    },
    # Withdrawals waiting for their run's sells are booked once the sells have ended
    # (after each allocation too; this catches sells that ended with nothing filled).
    # A rebalance run with no progress for OMS_REBALANCE_STALL_SECONDS (its chunks'
    # tasks lost: a broker flushed or restarted, a worker killed) gets them again.
    "recover-rebalance-runs": {
        "task": "orchestration.tasks.recover_rebalance_runs",
        "schedule": 60.0,
        "options": {"expires": 60.0},  # a sweep that waited in a busy queue is dropped
    },
    "settle-withdrawals": {
        "task": "orchestration.tasks.settle_withdrawals",
        "schedule": env.float("OMS_SETTLE_WITHDRAWALS_EVERY", default=300.0),
    },
}
CELERY_TIMEZONE = "UTC"

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password logins go through the failed-login counters (oms.throttling).
AUTHENTICATION_BACKENDS = ["oms.auth.ThrottledModelBackend"]
OMS_LOGIN_FAILURES_PER_USERNAME = env.int("OMS_LOGIN_FAILURES_PER_USERNAME", default=5)
OMS_LOGIN_FAILURES_PER_ADDRESS = env.int("OMS_LOGIN_FAILURES_PER_ADDRESS", default=20)
OMS_LOGIN_LOCKOUT_SECONDS = env.int("OMS_LOGIN_LOCKOUT_SECONDS", default=900)
OMS_LOGIN_THROTTLE_CACHE = "default"
# Proxies in front of the web server that append the client to X-Forwarded-For.
OMS_NUM_PROXIES = env.int("OMS_NUM_PROXIES", default=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18N / time ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# plotly.js comes from the installed plotly package (config/staticfiles.py).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfiles.PackagedAssetsFinder",
]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oms.api.authentication.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "oms.api.pagination.Pagination",
    "NUM_PROXIES": OMS_NUM_PROXIES or None,
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "oms.api.exceptions.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_PARSER_CLASSES": [
        "oms.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OMS API",
    "DESCRIPTION": "Buy-side portfolio order management: reference data, portfolios, "
    "models, rebalancing, orders, blocks, routes, executions and the audit trail.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status": name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "trading.models.Order.Status",
        "BlockStatusEnum": "trading.models.Block.Status",
        "RouteStatusEnum": "trading.models.Route.Status",
        "RebalanceRunStatusEnum": "portfolios.models.RebalanceRun.Status",
        "RunScopeEnum": "orchestration.selectors.SCOPE_CHOICES",
        "RuleScopeEnum": "compliance.models.Rule.Scope",
    },
}

# --- Logging --------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- The OMS's own ----------------------------------------------------------------
# Prices older than this are stale: an account holding such a security is not rebalanced.
OMS_PRICE_STALE_DAYS = env.int("OMS_PRICE_STALE_DAYS", default=7)
# Seconds the simulated broker waits before acknowledging and before filling.
OMS_SIMULATED_BROKER_LATENCY = env.float("OMS_SIMULATED_BROKER_LATENCY", default=0.2)
# Runs of up to this many accounts are computed in the request; larger ones by the worker.
OMS_REBALANCE_INLINE_LIMIT = env.int("OMS_REBALANCE_INLINE_LIMIT", default=50)
# A running rebalance run whose chunks made no progress for this long has them sent
# to the workers again (orchestration.services.rebalance_runs_recover).
OMS_REBALANCE_STALL_SECONDS = env.float("OMS_REBALANCE_STALL_SECONDS", default=300.0)
# The API remembers the answer to a POST with an Idempotency-Key for this many days.
OMS_IDEMPOTENCY_KEY_DAYS = env.int("OMS_IDEMPOTENCY_KEY_DAYS", default=7)

# --- The audit trail (docs/audit.md) ---------------------------------------------------
# The key that signs the trail's checkpoints (HMAC-SHA256). It must live outside the
# database, so that whoever can rewrite the tables cannot sign: OMS_AUDIT_SEAL_KEY, or
# the file OMS_AUDIT_SEAL_KEY_FILE names (the sealer makes one with a random key if it
# is missing; the embedded default keeps it in var/).
OMS_AUDIT_SEAL_KEY = env.str("OMS_AUDIT_SEAL_KEY", default="")
OMS_AUDIT_SEAL_KEY_FILE = env.str(
    "OMS_AUDIT_SEAL_KEY_FILE", default=str(VAR_DIR / "audit-seal.key")
)
# Where the sealer also appends each checkpoint (JSON lines) for an auditor to keep.
OMS_AUDIT_CHECKPOINT_FILE = env.str("OMS_AUDIT_CHECKPOINT_FILE", default="")
# Seconds between the sealer's rounds, and at least between two checkpoints.
OMS_AUDIT_SEAL_EVERY = env.float("OMS_AUDIT_SEAL_EVERY", default=1.0)
OMS_AUDIT_CHECKPOINT_EVERY = env.float("OMS_AUDIT_CHECKPOINT_EVERY", default=10.0)

# The push channel (oms/push.py): pages hold a Server-Sent Events stream fed by
# Redis pub/sub; without Redis (the embedded default) they poll once a second.
OMS_PUSH_REDIS_URL = env.str("OMS_PUSH_REDIS_URL", default=REDIS_URL)
# The exchange calendar (a MIC of exchange_calendars) that a security's day
# orders end with, by the security's country; others use the default.
OMS_DEFAULT_EXCHANGE = env.str("OMS_DEFAULT_EXCHANGE", default="XNYS")
OMS_EXCHANGE_BY_COUNTRY = {
    "US": "XNYS",
    "CA": "XTSE",
    "GB": "XLON",
    "DE": "XETR",
    "FR": "XPAR",
    "NL": "XAMS",
    "CH": "XSWX",
    "JP": "XTKS",
    "HK": "XHKG",
    "AU": "XASX",
} | env.dict("OMS_EXCHANGE_BY_COUNTRY", default={})
# The order status sweep (Celery beat): a route waiting for its broker's answer
# (pending new, cancel or replace, or unconfirmed) this long is asked its status;
# a live route that heard nothing for OMS_ROUTE_QUIET_SECONDS too; after
# OMS_ROUTE_STATUS_TRIES unanswered requests it is listed for a person.
OMS_ROUTE_PENDING_SECONDS = env.float("OMS_ROUTE_PENDING_SECONDS", default=60.0)
OMS_ROUTE_QUIET_SECONDS = env.float("OMS_ROUTE_QUIET_SECONDS", default=600.0)
OMS_ROUTE_STATUS_TRIES = env.int("OMS_ROUTE_STATUS_TRIES", default=3)


# --- Compliance (issue 10): the nightly post-trade check of every account -------------
# (after each allocation the accounts it booked are checked too, by a task sent on commit)
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE["compliance-posttrade-nightly"] = {
    "task": "compliance.tasks.posttrade_nightly",
    "schedule": crontab(hour=env.int("OMS_POSTTRADE_NIGHTLY_HOUR", default=22), minute=30),
}

# --- Life-cycle events (docs/instruments.md): coupons, maturities, expiries -----------
# Booked every day after the close (before the nightly post-trade check), catching up
# the days before it missed (a run books nothing twice); an option in the money by at
# least the threshold (in the underlying's price: OCC Rule 805's $0.01) is exercised;
# a final settlement or underlying price older than the age limit (days) is refused.
CELERY_BEAT_SCHEDULE["book-lifecycle-events"] = {
    "task": "portfolios.tasks.book_lifecycle_events",
    "schedule": crontab(hour=env.int("OMS_LIFECYCLE_HOUR", default=22), minute=0),
}
OMS_LIFECYCLE_CATCH_UP_DAYS = env.int("OMS_LIFECYCLE_CATCH_UP_DAYS", default=7)
OMS_LIFECYCLE_PRICE_MAX_AGE_DAYS = env.int("OMS_LIFECYCLE_PRICE_MAX_AGE_DAYS", default=4)
OMS_OPTION_EXERCISE_THRESHOLD = Decimal(env.str("OMS_OPTION_EXERCISE_THRESHOLD", default="0.01"))

# Market data (docs/marketdata.md): how old a price may be, per asset class (and "fx"),
# before it is stale (seconds; OMS_QUOTE_MAX_AGE="equity=60,fx=30" overrides some);
# the move from the last accepted price beyond which a quote is quarantined (0.25 =
# 25%); how far ahead of our clock a quote may be dated; the length of a price bar;
# the Redis that holds the latest quotes (the cache's Redis by default; without one,
# Django's cache); the venues and pace of the simulated feed (manage.py run_price_feed).
OMS_QUOTE_MAX_AGE = {
    "equity": 900,
    "etf": 900,
    "fixed_income": 86400 * 3,
    "money_market": 86400 * 7,
    "fx": 900,
    "default": 86400,
} | {k: int(v) for k, v in env.dict("OMS_QUOTE_MAX_AGE", default={}).items()}
OMS_QUOTE_JUMP_LIMIT = env.float("OMS_QUOTE_JUMP_LIMIT", default=0.25)
OMS_QUOTE_FUTURE_SKEW_SECONDS = env.float("OMS_QUOTE_FUTURE_SKEW_SECONDS", default=5.0)
OMS_QUOTE_BAR_SECONDS = env.int("OMS_QUOTE_BAR_SECONDS", default=60)
OMS_QUOTE_REDIS_URL = env.str("OMS_QUOTE_REDIS_URL", default=REDIS_URL)
OMS_PRICE_FEED_VENUES = env.list("OMS_PRICE_FEED_VENUES", default=["XNAS", "ARCX"])
OMS_PRICE_FEED_TICK_RATE = env.float("OMS_PRICE_FEED_TICK_RATE", default=20.0)
OMS_PRICE_FEED_VOLATILITY = env.float("OMS_PRICE_FEED_VOLATILITY", default=0.3)

# The firm's base currency: the one currency model, manager and firm totals and the
# exposure view are in (each account is also valued in its own base currency).
OMS_BASE_CURRENCY = env.str("OMS_BASE_CURRENCY", default="USD").upper()
