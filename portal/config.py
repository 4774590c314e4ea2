"""Configuration classes. Secrets come only from the environment."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/billing"


# Keys that have been published (this project's old built-in defaults, framework examples):
# a session cookie signed with any of them must never be accepted.
PUBLIC_SECRET_KEYS = frozenset({
    "dev-only-not-secret", "testing", "bench", "dev", "development", "secret", "secret-key", "secret_key",
    "changeme", "change-me", "please-change-me", "your-secret-key", "super-secret", "default",
})
MIN_SECRET_KEY_LENGTH = 16


def secret_key_problem(key) -> str | None:
    """Why `key` cannot sign sessions, or None when it can."""
    if not key:
        return "SECRET_KEY is not set"
    if str(key).strip().lower() in PUBLIC_SECRET_KEYS:
        return "SECRET_KEY is a published example key"
    if len(str(key)) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    return None


def sqlalchemy_url(libpq_url: str) -> str:
    """DATABASE_URL is a libpq URL; SQLAlchemy wants its driver named."""
    for scheme in ("postgresql://", "postgres://"):
        if libpq_url.startswith(scheme):
            return "postgresql+psycopg2://" + libpq_url[len(scheme):]
    return libpq_url


class Config:
    DATABASE_URL = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    # A streaming replica (hot standby) of DATABASE_URL for the heavy read-only pages: CDR
    # browser and CSV, reports, dashboard, self care's calls, the API's CDR reads
    # (portal/replica.py, docs/scaling-replica.md). Unset: everything reads the primary.
    DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL") or None
    # Beyond this lag (seconds) those pages read the primary again, and say so.
    REPLICA_MAX_LAG_SECONDS = float(os.environ.get("REPLICA_MAX_LAG_SECONDS", "300"))
    # libpq's connect_timeout for the replica (2 is its shortest), and how long a failed
    # connection is remembered before the replica is tried again.
    REPLICA_CONNECT_TIMEOUT = int(os.environ.get("REPLICA_CONNECT_TIMEOUT", "2"))
    REPLICA_RETRY_SECONDS = float(os.environ.get("REPLICA_RETRY_SECONDS", "15"))
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    # "Keep me signed in": the same flags as the session cookie (create_app copies
    # SESSION_COOKIE_SECURE to REMEMBER_COOKIE_SECURE), for two weeks.
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = timedelta(days=int(os.environ.get("REMEMBER_COOKIE_DAYS", "14")))
    WTF_CSRF_TIME_LIMIT = None
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks); from any other peer those headers are ignored (portal/proxy.py).
    TRUSTED_PROXIES = os.environ.get("TRUSTED_PROXIES", "")
    PROXY_FIX_X_FOR = int(os.environ.get("PROXY_FIX_X_FOR", "1"))
    PROXY_FIX_X_PROTO = int(os.environ.get("PROXY_FIX_X_PROTO", "1"))
    # Sign-in throttling (portal/auth/throttle.py): failed attempts within the window.
    LOGIN_WINDOW_MINUTES = 15
    LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_CLIENT = 5
    LOGIN_MAX_FAILURES_PER_ACCOUNT = 25
    LOGIN_MAX_FAILURES_PER_CLIENT = 100
    SECOND_FACTOR_MAX_FAILURES = 5
    RESET_MAX_PER_ADDRESS_AND_HOUR = 3
    RESET_MAX_PER_CLIENT_AND_HOUR = 20
    # Links sent by e-mail (password reset, address verification) start with this URL,
    # never with the Host header of the request that asked for them.
    PORTAL_URL = os.environ.get("PORTAL_URL", "").rstrip("/")
    PASSWORD_RESET_MINUTES = 60
    EMAIL_VERIFICATION_HOURS = 48
    # Seconds a browser is asked to wait when the database is unreachable (503 page).
    DATABASE_DOWN_RETRY_AFTER = 30
    # Outgoing mail (alerts, invoices).
    SMTP_HOST = os.environ.get("SMTP_HOST")   # unset: a mail server on 127.0.0.1 (pages say "not configured")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    SMTP_USER = os.environ.get("SMTP_USER")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
    SMTP_STARTTLS = os.environ.get("SMTP_STARTTLS", "0") == "1"
    MAIL_FROM = os.environ.get("MAIL_FROM", "billing@localhost")
    # Invoice periods start at midnight and jobs are scheduled in this time zone.
    BILLING_TIMEZONE = os.environ.get("BILLING_TIMEZONE", "UTC")
    # CDR retention (docs/scaling-retention.md): where monthly CDR archives are written
    # (gzip CSV + manifest); unset: the instance folder's cdr-archive/.
    CDR_ARCHIVE_DIR = os.environ.get("CDR_ARCHIVE_DIR")
    # FreeSWITCH event socket (optional: admin actions are disabled when unset).
    ESL_HOST = os.environ.get("ESL_HOST")
    ESL_PORT = int(os.environ.get("ESL_PORT", "8021"))
    ESL_PASSWORD = os.environ.get("ESL_PASSWORD", "ClueCon")
    # In-process scheduler; off for tests and for CLI invocations.
    SCHEDULER_ENABLED = os.environ.get("SCHEDULER_ENABLED", "0") == "1"
    PAGE_SIZE = 50
    # REST API (docs/api.md): requests per token and minute, counted in PostgreSQL.
    API_RATE_LIMIT_PER_MINUTE = int(os.environ.get("API_RATE_LIMIT_PER_MINUTE", "1200"))
    # Webhooks: seconds an endpoint may take to answer; a CA bundle for a private CA.
    WEBHOOK_TIMEOUT = int(os.environ.get("WEBHOOK_TIMEOUT", "10"))
    WEBHOOK_CA_FILE = os.environ.get("WEBHOOK_CA_FILE")


class ProductionConfig(Config):
    """Behind nginx with TLS (deploy/, docs/deployment.md): wsgi.py uses it when
    PORTAL_CONFIG=production. No fallback secret (as everywhere: create_app refuses a
    missing or published SECRET_KEY), secure cookies, and X-Forwarded-For/-Proto believed
    from nginx on this host only (TRUSTED_PROXIES, portal/proxy.py): the client address
    the sign-in throttle counts, https for redirects and HSTS."""
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = "https"
    TRUSTED_PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1, ::1")


CONFIGS = {"production": ProductionConfig}


def config_from_environment(default: type[Config]) -> type[Config]:
    """The class named by PORTAL_CONFIG (`production`), else `default`."""
    name = os.environ.get("PORTAL_CONFIG", "").strip().lower()
    if name and name not in CONFIGS:
        raise RuntimeError(f"PORTAL_CONFIG={name!r} is not one of: {', '.join(CONFIGS)} (or unset for development)")
    return CONFIGS.get(name, default)


class TestingConfig(Config):
    TESTING = True
    # A key of this test process only: nothing signed with it is valid anywhere else.
    SECRET_KEY = secrets.token_hex(32)
    WTF_CSRF_ENABLED = False
    SCHEDULER_ENABLED = False
    PORTAL_URL = "http://portal.test"
    SMTP_PORT = 0
