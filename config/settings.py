"""Signalbox settings, read from environment variables.

Every variable has a documented default (README "Configuration") so that a fresh clone runs with
nothing set: SQLite in ``var/``, the database task backend, in-process cache, live inbox by
polling. Setting ``REDIS_URL`` switches the task backend to RQ, the cache to Redis and the live
inbox to Redis pub/sub; setting ``DATABASE_URL`` moves to PostgreSQL. Nothing else changes.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local ``.env`` (written by ``make run``, never committed) supplies defaults; real
# environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; in DEBUG a per-checkout key kept in ``.secret_key``.

    The generated key is never committed (``.gitignore``) and never used with ``DEBUG=0``:
    production must say which key it signs tokens with.
    """
    if key := env.str("SECRET_KEY", default=""):
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(or DEBUG=1 for a local key generated in .secret_key)."
        )
    key_file = BASE_DIR / ".secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public origin used in links that leave the site (emails, SMS, provider callbacks). Unset,
# ``make run``/``config.serve run`` sets it to where it serves (``make run PORT=8101``).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

REDIS_URL = env.str("REDIS_URL", default="")

INSTALLED_APPS = [
    # Unfold must come before django.contrib.admin so its templates win.
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "django_htmx",
    "template_partials",
    "import_export",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "accounts",
    "notifications",
    "channels_adapters",
    "dashboard",
    "demo_shop",
    "ninja",  # the REST API's docs page and its local Swagger UI files
    "api",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",  # before WhiteNoise: static files get one too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # turns axes' lockout flag into the lockout page
    "api.middleware.ApiMiddleware",  # /api/: body size cap, every key's call audited
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates first: they override Unfold's (see DESIGN.md "UI").
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.csp.csp_nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'signalbox.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # A polling worker and the web process write concurrently: take the write lock at BEGIN
        # (no deadlocking upgrade from a read lock) and wait for it rather than fail.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not :memory:, so that workers and other processes share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("SQLITE_TEST_NAME", default=str(VAR_DIR / "test.sqlite3"))
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The unread badge and every live inbox's check run as statements PostgreSQL prepares once per
# connection (``notifications.prepared``). Off behind a pooler in transaction mode that cannot
# keep prepared statements (PgBouncer before 1.21): by default whenever the database URL says
# ``?disable_server_side_cursors=true``, Django's own setting for such a pooler.
_BEHIND_A_POOLER = str(DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", "")).lower() in {"1", "true", "yes", "on"}
SIGNALBOX_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=not _BEHIND_A_POOLER)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "signalbox",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Tasks ----------------------------------------------------------------------------------
# TASK_BACKEND: "db" (default without Redis), "rq" (default with REDIS_URL) or "immediate".
TASK_BACKEND = env.str("TASK_BACKEND", default="rq" if REDIS_URL else "db")
if TASK_BACKEND == "rq":
    if not REDIS_URL:
        raise ImproperlyConfigured("TASK_BACKEND=rq needs REDIS_URL.")
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}}
elif TASK_BACKEND == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif TASK_BACKEND == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    raise ImproperlyConfigured(f"TASK_BACKEND must be db, rq or immediate, not {TASK_BACKEND!r}.")

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "notifications:inbox"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in ---------------------------------------------------------------------------------
# Lockout (django-axes; accounts/lockout.py): after SIGNALBOX_LOGIN_FAILURE_LIMIT failed sign-ins
# for one account, or from one client address, that account or address is refused (even with
# the right password) until SIGNALBOX_LOGIN_COOLOFF_MINUTES after its last failure, or until a
# superuser unlocks it (admin → Recipients → Sign-in lockouts). The address is REMOTE_ADDR;
# behind reverse proxies set SIGNALBOX_TRUSTED_PROXY_COUNT to how many of them append the
# client's address to X-Forwarded-For (uvicorn's --proxy-headers rewrites REMOTE_ADDR itself:
# then leave it at 0).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out account or address
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SIGNALBOX_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGNALBOX_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Attempts while locked out are refused without being recorded: the lockout ends when the page
# says, and a flood of attempts cannot grow axes' rows.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ADMIN = False  # accounts/admin.py shows lockouts in the Unfold shell, to superusers
SIGNALBOX_TRUSTED_PROXY_COUNT = env.int("SIGNALBOX_TRUSTED_PROXY_COUNT", default=0)

# Freeze the objects start-up built (Django, every app) so the garbage collector never walks them
# again: ops/heap.py. On by default in every process.
SIGNALBOX_FREEZE_STARTUP_HEAP = env.bool("SIGNALBOX_FREEZE_STARTUP_HEAP", default=True)

# Staff sessions end this long after signing in (accounts/sessions.py); recipients keep
# SESSION_COOKIE_AGE (two weeks).
SIGNALBOX_STAFF_SESSION_HOURS = env.float("SIGNALBOX_STAFF_SESSION_HOURS", default=12)
# Invitation links (accounts/passwords.py) last this long; reset links PASSWORD_RESET_TIMEOUT.
SIGNALBOX_INVITATION_DAYS = env.float("SIGNALBOX_INVITATION_DAYS", default=14)

# --- I18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static ---------------------------------------------------------------------------------
STATIC_URL = "static/"
# Filled by collectstatic, which `make run` and `make prod` run before serving (config/serve.py).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise wants it even before the first collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js's basic bundle from node_modules (package-lock.json; no CDN): {% static "plotly/plotly-basic.min.js" %}.
    "config.storage.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names, .gz and .br siblings, far-future caching; a file missing from the manifest is
    # served under its plain name, never a 500 (config/storage.py).
    "staticfiles": {"BACKEND": "config.storage.StaticStorage"},
}
# In DEBUG, files not collected yet (added since the last collectstatic) are found in the apps.
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- Security (production-safe with DEBUG=0; TLS terminates at the proxy) --------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content-Security-Policy ----------------------------------------------------------------
# config/csp.py: strict on recipient pages, as strict as Unfold allows in the admin, nothing
# loadable from JSON/CSV/PDF. SIGNALBOX_CSP=0 turns the header off (emergency only).
SIGNALBOX_CSP = env.bool("SIGNALBOX_CSP", default=True)

# --- Email and SMS providers -----------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Signalbox <noreply@signalbox.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# django-anymail: the ESP's tracking webhooks are mounted at /webhooks/anymail/ when set.
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Aliyun and Tencent Cloud SMS (channels_adapters.aliyun_sms / tencent_sms), chosen per alias in
# NOTIFICATION_CHANNELS (README "Aliyun and Tencent Cloud SMS"). Their delivery reports are
# unsigned: the callback URL carries the token (/webhooks/aliyun/sms-report/<token>/); empty: off.
ALIYUN_ACCESS_KEY_ID = env.str("ALIYUN_ACCESS_KEY_ID", default="")
ALIYUN_ACCESS_KEY_SECRET = env.str("ALIYUN_ACCESS_KEY_SECRET", default="")
ALIYUN_SMS_SIGN_NAME = env.str("ALIYUN_SMS_SIGN_NAME", default="")
ALIYUN_SMS_CALLBACK_TOKEN = env.str("ALIYUN_SMS_CALLBACK_TOKEN", default="")
TENCENTCLOUD_SECRET_ID = env.str("TENCENTCLOUD_SECRET_ID", default="")
TENCENTCLOUD_SECRET_KEY = env.str("TENCENTCLOUD_SECRET_KEY", default="")
TENCENT_SMS_SDK_APP_ID = env.str("TENCENT_SMS_SDK_APP_ID", default="")
TENCENT_SMS_SIGN_NAME = env.str("TENCENT_SMS_SIGN_NAME", default="")
TENCENT_SMS_CALLBACK_TOKEN = env.str("TENCENT_SMS_CALLBACK_TOKEN", default="")
# WeChat Official Account (channels_adapters.wechat): the API credentials, and the token WeChat
# signs its calls to /webhooks/wechat/events/ with (the server URL's 令牌).
WECHAT_APP_ID = env.str("WECHAT_APP_ID", default="")
WECHAT_APP_SECRET = env.str("WECHAT_APP_SECRET", default="")
WECHAT_TOKEN = env.str("WECHAT_TOKEN", default="")
# Mobile push over FCM HTTP v1 (channels_adapters.mobilepush): the Firebase service account JSON.
FCM_SERVICE_ACCOUNT_FILE = env.str("FCM_SERVICE_ACCOUNT_FILE", default="")
# APNs directly (channels_adapters.apns, iOS-only apps): the .p8 provider key (PEM or a path), its
# key id, the team id and the app's bundle id (topic).
APNS_KEY = env.str("APNS_KEY", default="")
APNS_KEY_ID = env.str("APNS_KEY_ID", default="")
APNS_TEAM_ID = env.str("APNS_TEAM_ID", default="")
APNS_TOPIC = env.str("APNS_TOPIC", default="")

# --- Channels -------------------------------------------------------------------------------
# Email, SMS, web push, chat, WeChat and mobile push are *captured* into the staff Outbox (admin →
# Delivery ledger → Outbox) unless their provider is configured: EMAIL_HOST for email,
# TWILIO_ACCOUNT_SID for SMS, VAPID_PRIVATE_KEY for web push, SIGNALBOX_CHAT_LIVE=1 for chat
# webhooks, WECHAT_APP_ID + WECHAT_APP_SECRET for WeChat, FCM_SERVICE_ACCOUNT_FILE (or APNS_KEY)
# for mobile push. SIGNALBOX_CAPTURE=1
# captures everything regardless (staging with real credentials).
SIGNALBOX_CAPTURE = env.bool("SIGNALBOX_CAPTURE", default=False)
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:admin@signalbox.local")
_CAPTURE = {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}}


def _live_or_capture(configured: bool, backend: str, options: dict | None = None) -> dict:
    if configured and not SIGNALBOX_CAPTURE:
        return {"BACKEND": backend, "OPTIONS": options or {}}
    return _CAPTURE


# Which provider the "sms" alias uses (twilio, aliyun or tencent; live once its credential is set)
# and its OPTIONS as JSON, e.g. Aliyun's template mapping (README "Aliyun and Tencent Cloud SMS").
# Several providers behind "sms" (e.g. +86 through Aliyun, the rest through Twilio): the
# channels_adapters.sms_routes.SmsRoutes router, configured in NOTIFICATION_CHANNELS itself (README).
SMS_PROVIDERS = {
    "twilio": ("channels_adapters.sms.SmsChannel", "TWILIO_ACCOUNT_SID"),
    "aliyun": ("channels_adapters.aliyun_sms.AliyunSmsChannel", "ALIYUN_ACCESS_KEY_ID"),
    "tencent": ("channels_adapters.tencent_sms.TencentSmsChannel", "TENCENTCLOUD_SECRET_ID"),
}
_SMS_PROVIDER = env.str("SIGNALBOX_SMS_PROVIDER", default="twilio")
if _SMS_PROVIDER not in SMS_PROVIDERS:
    raise ImproperlyConfigured(
        f"SIGNALBOX_SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, not {_SMS_PROVIDER!r}."
    )
_SMS_BACKEND, _SMS_CREDENTIAL = SMS_PROVIDERS[_SMS_PROVIDER]
SIGNALBOX_SMS_OPTIONS = env.json("SIGNALBOX_SMS_OPTIONS", default={})

NOTIFICATION_CHANNELS = {
    "email": _live_or_capture("EMAIL_HOST" in env, "channels_adapters.email.EmailChannel"),
    "sms": _live_or_capture(bool(env.str(_SMS_CREDENTIAL, default="")), _SMS_BACKEND, SIGNALBOX_SMS_OPTIONS),
    "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    "webpush": _live_or_capture(
        bool(VAPID_PRIVATE_KEY), "channels_adapters.webpush.WebPushChannel",
        {"vapid_private_key": VAPID_PRIVATE_KEY, "vapid_subject": VAPID_SUBJECT},
    ),
    "chat": _live_or_capture(env.bool("SIGNALBOX_CHAT_LIVE", default=False), "channels_adapters.chat.ChatChannel"),
    # WeChat template messages: OPTIONS (the template mapping) as JSON in SIGNALBOX_WECHAT_OPTIONS.
    "wechat": _live_or_capture(
        bool(WECHAT_APP_ID and WECHAT_APP_SECRET), "channels_adapters.wechat.WeChatChannel",
        env.json("SIGNALBOX_WECHAT_OPTIONS", default={}),
    ),
    # App pushes: FCM once its service account is set, else APNs directly once its key is set.
    "mobilepush": _live_or_capture(
        bool(FCM_SERVICE_ACCOUNT_FILE or APNS_KEY),
        "channels_adapters.mobilepush.MobilePushChannel" if FCM_SERVICE_ACCOUNT_FILE else "channels_adapters.apns.ApnsChannel",
    ),
}

# --- Signalbox (read through notifications.conf) ---------------------------------------------
# Erased people's suppressions are kept as keyed hashes (notifications/privacy); set a key of its
# own so that rotating SECRET_KEY does not un-suppress them.
SIGNALBOX_SUPPRESSION_KEY = env.str("SIGNALBOX_SUPPRESSION_KEY", default="")
SIGNALBOX_INBOX_PAGE_SIZE = env.int("SIGNALBOX_INBOX_PAGE_SIZE", default=20)
SIGNALBOX_LEASE_SECONDS = env.int("SIGNALBOX_LEASE_SECONDS", default=300)
SIGNALBOX_MAX_ATTEMPTS = env.int("SIGNALBOX_MAX_ATTEMPTS", default=5)
SIGNALBOX_LIVE_POLL_SECONDS = env.float("SIGNALBOX_LIVE_POLL_SECONDS", default=0.5)
SIGNALBOX_LIVE_STREAM_SECONDS = env.float("SIGNALBOX_LIVE_STREAM_SECONDS", default=55.0)
SIGNALBOX_LIVE_REDIS_URL = env.str("SIGNALBOX_LIVE_REDIS_URL", default=REDIS_URL)
SIGNALBOX_APPROVAL_THRESHOLD = env.int("SIGNALBOX_APPROVAL_THRESHOLD", default=1000)
SIGNALBOX_SMS_SEGMENT_PRICE = env.str("SIGNALBOX_SMS_SEGMENT_PRICE", default="0.0079 USD")
SIGNALBOX_TEMPLATE_RENDER_MS = env.int("SIGNALBOX_TEMPLATE_RENDER_MS", default=200)
SIGNALBOX_TEMPLATE_MAX_OUTPUT = env.int("SIGNALBOX_TEMPLATE_MAX_OUTPUT", default=100_000)
SIGNALBOX_IMPORT_MAX_BYTES = env.int("SIGNALBOX_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
SIGNALBOX_IMPORT_MAX_ROWS = env.int("SIGNALBOX_IMPORT_MAX_ROWS", default=200_000)
SIGNALBOX_IMPORT_SYNC_ROWS = env.int("SIGNALBOX_IMPORT_SYNC_ROWS", default=5_000)
SIGNALBOX_IMPORT_PHONE_REGION = env.str("SIGNALBOX_IMPORT_PHONE_REGION", default="")
# 0: every XLSX and PDF report is built by a task, never in the request (README "Reports").
SIGNALBOX_REPORT_INLINE_ROWS = env.int("SIGNALBOX_REPORT_INLINE_ROWS", default=0)
SIGNALBOX_TRIGGER_VERSION_CHECK = env.str("SIGNALBOX_TRIGGER_VERSION_CHECK", default="auto")
SIGNALBOX_ANALYTICS_REFRESH_SECONDS = env.int("SIGNALBOX_ANALYTICS_REFRESH_SECONDS", default=300)
# Heartbeats behind /readyz (read through ops.conf): how often the scheduler asks a worker for one,
# and the ages past which the worker or the scheduler check turns red.
SIGNALBOX_HEARTBEAT_SECONDS = env.float("SIGNALBOX_HEARTBEAT_SECONDS", default=15)
SIGNALBOX_WORKER_MAX_AGE_SECONDS = env.float("SIGNALBOX_WORKER_MAX_AGE_SECONDS", default=120)
SIGNALBOX_SCHEDULER_MAX_AGE_SECONDS = env.float("SIGNALBOX_SCHEDULER_MAX_AGE_SECONDS", default=60)
# /metrics (ops.metrics): who may scrape it (a bearer token, or client addresses/networks; with
# neither, nobody), how often the scheduler counts the ledger by channel and status, and how far back
# send latency and provider errors look.
SIGNALBOX_METRICS_TOKEN = env.str("SIGNALBOX_METRICS_TOKEN", default="")
SIGNALBOX_METRICS_ALLOWED_IPS = env.list("SIGNALBOX_METRICS_ALLOWED_IPS", default=[])
SIGNALBOX_METRICS_COUNT_SECONDS = env.float("SIGNALBOX_METRICS_COUNT_SECONDS", default=60)
SIGNALBOX_METRICS_WINDOW_SECONDS = env.float("SIGNALBOX_METRICS_WINDOW_SECONDS", default=300)
# Data retention (read through ops.conf; README "Data retention"): days each kind is kept, "" or 0
# keeps it forever. Ledger rows go only once the analytics rollups cover their day.
SIGNALBOX_RETAIN_DELIVERIES_DAYS = env.str("SIGNALBOX_RETAIN_DELIVERIES_DAYS", default="180")
SIGNALBOX_RETAIN_OUTBOX_DAYS = env.str("SIGNALBOX_RETAIN_OUTBOX_DAYS", default="30")
SIGNALBOX_RETAIN_IMPORTS_DAYS = env.str("SIGNALBOX_RETAIN_IMPORTS_DAYS", default="30")
SIGNALBOX_RETAIN_REPORTS_DAYS = env.str("SIGNALBOX_RETAIN_REPORTS_DAYS", default="90")
SIGNALBOX_RETAIN_AUDIT_DAYS = env.str("SIGNALBOX_RETAIN_AUDIT_DAYS", default="730")
SIGNALBOX_RETENTION_BATCH = env.int("SIGNALBOX_RETENTION_BATCH", default=1_000)
SIGNALBOX_RETENTION_TICK_SECONDS = env.float("SIGNALBOX_RETENTION_TICK_SECONDS", default=2.0)
SIGNALBOX_RETENTION_INTERVAL_SECONDS = env.float("SIGNALBOX_RETENTION_INTERVAL_SECONDS", default=600)

# --- Forms and admin shell -------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = ["unfold_crispy"]
CRISPY_TEMPLATE_PACK = "unfold_crispy"


def _model_item(title, icon: str, model: str) -> dict:
    """A sidebar entry for a model's changelist, shown to those who may view the model."""
    app_label, model_name = model.split(".")
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app_label}_{model_name}_changelist"),
        "permission": lambda request: request.user.has_perm(f"{app_label}.view_{model_name}"),
    }


UNFOLD = {
    "SITE_TITLE": "Signalbox",
    "SITE_HEADER": "Signalbox",
    "SITE_SUBHEADER": _("Notifications & campaigns"),
    "SITE_URL": "/notifications/",
    "SITE_SYMBOL": "campaign",
    # Our own icon (otherwise every first page load asks for /favicon.ico and logs a 404 error).
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("signalbox/favicon.svg")},
    ],
    "SHOW_LANGUAGES": True,
    "ENVIRONMENT": "dashboard.unfold.environment_callback",
    "DASHBOARD_CALLBACK": "dashboard.unfold.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        # Grouped by domain, not by Django app.
        "navigation": [
            {
                "title": _("Overview"),
                "items": [
                    {"title": _("Dashboard"), "icon": "dashboard", "link": reverse_lazy("admin:index")},
                    {"title": _("My inbox"), "icon": "inbox", "link": reverse_lazy("notifications:inbox"),
                     # Unfold matches by substring: /admin/notifications/... is not the inbox.
                     "active": lambda request: request.path.startswith("/notifications/")},
                    {
                        "title": _("Analytics"),
                        "icon": "monitoring",
                        "link": reverse_lazy("dashboard:analytics"),
                        # Unfold matches by substring: the approval desk lives under /admin/analytics/ too.
                        "active": lambda request: request.path.startswith("/admin/analytics/")
                        and not request.path.startswith(("/admin/analytics/approvals/", "/admin/analytics/journeys/")),
                        "permission": lambda request: request.user.has_perm("notifications.view_delivery"),
                    },
                    {
                        "title": _("System status"),
                        "icon": "monitor_heart",
                        "link": reverse_lazy("ops:system_status"),
                        "permission": "ops.views.can_view_status",  # accounts.roles: system.view_status
                    },
                    {
                        "title": _("API keys"),
                        "icon": "key",
                        "link": reverse_lazy("admin:api_apikey_changelist"),
                        "permission": "api.admin.can_manage_keys",  # accounts.roles: apikey.manage
                    },
                    {
                        "title": _("Webhooks"),
                        "icon": "webhook",
                        "link": reverse_lazy("admin:notifications_webhookendpoint_changelist"),
                        # accounts.roles: webhook.manage
                        "permission": "notifications.admin.webhooks.can_manage_webhooks",
                    },
                ],
            },
            {
                "title": _("Recipients"),
                "collapsible": True,
                "items": [
                    _model_item(_("Users"), "person", "auth.user"),
                    _model_item(_("Import users"), "upload_file", "dashboard.importjob"),
                    _model_item(_("Recipient profiles"), "badge", "notifications.recipientprofile"),
                    _model_item(_("Preferences"), "tune", "notifications.preference"),
                    _model_item(_("Suppressions"), "block", "notifications.suppression"),
                    _model_item(_("Groups"), "group", "auth.group"),
                    _model_item(_("Sign-in lockouts"), "lock", "axes.accessattempt"),
                ],
            },
            {
                "title": _("Messaging"),
                "collapsible": True,
                "items": [
                    _model_item(_("Campaigns"), "campaign", "notifications.campaign"),
                    {
                        "title": _("Awaiting approval"),
                        "icon": "verified",
                        "link": reverse_lazy("dashboard:approvals"),
                        "permission": lambda request: request.user.has_perm("notifications.approve_campaign"),
                    },
                    _model_item(_("Audiences"), "groups", "notifications.audience"),
                    _model_item(_("Message templates"), "description", "notifications.messagetemplate"),
                    _model_item(_("Signal triggers"), "bolt", "notifications.signaltrigger"),
                    _model_item(_("Journeys"), "route", "notifications.journey"),
                    {
                        "title": _("Journey analytics"),
                        "icon": "insights",
                        "link": reverse_lazy("dashboard:journeys"),
                        "permission": lambda request: request.user.has_perm("notifications.view_delivery"),
                    },
                    _model_item(_("Campaign runs"), "play_circle", "notifications.campaignrun"),
                    _model_item(_("Categories"), "label", "notifications.category"),
                    _model_item(_("Inbox notifications"), "notifications", "notifications.notification"),
                    {
                        "title": _("Broadcasts"),
                        "icon": "campaign",
                        "link": reverse_lazy("admin:notifications_broadcast_changelist"),
                        # As accounts.url_policy decides: readers of inbox notifications and senders.
                        "permission": lambda request: request.user.has_perm("notifications.view_notification")
                        or request.user.has_perm("notifications.send_broadcast"),
                    },
                ],
            },
            {
                "title": _("Delivery ledger"),
                "collapsible": True,
                "items": [
                    _model_item(_("Deliveries"), "send", "notifications.delivery"),
                    _model_item(_("Receipts"), "receipt_long", "notifications.deliveryevent"),
                    _model_item(_("Outbox"), "outbox", "channels_adapters.capturedmessage"),
                    _model_item(_("Audit log"), "history", "notifications.auditentry"),
                ],
            },
            {
                "title": _("Reports"),
                "collapsible": True,
                "items": [
                    {
                        "title": _("Reports & exports"),
                        "icon": "download",
                        "link": reverse_lazy("reports:index"),
                        "permission": lambda request: request.user.has_perm("dashboard.export_data")
                        or request.user.has_perm("dashboard.download_reports"),
                    },
                    {
                        "title": _("Audit log search"),
                        "icon": "manage_search",
                        "link": reverse_lazy("reports:audit_log"),
                        "permission": lambda request: request.user.has_perm("notifications.view_auditentry"),
                    },
                ],
            },
            {
                "title": _("Demo shop"),
                "collapsible": True,
                "items": [
                    _model_item(_("Customers"), "storefront", "demo_shop.customer"),
                    _model_item(_("Orders"), "shopping_cart", "demo_shop.order"),
                ],
            },
        ],
    },
}

# Logs go to stderr. LOG_FORMAT=json: one JSON object per line (time, level, logger, message,
# exception) with the delivery_id, run_id, campaign_id and task_id of the send or run being worked
# on (config/logs.py); plain (the default): one human line per record.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"log_context": {"()": "config.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["log_context"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd, used by tests and benchmarks
        "weasyprint": {"level": "WARNING"},  # logs every rendering step at INFO
        "fontTools": {"level": "WARNING"},
        "django_tasks": {"level": env.str("TASKS_LOG_LEVEL", default="INFO")},
    },
}
