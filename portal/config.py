"""Configuration classes. Secrets come only from the environment."""
from __future__ import annotations

import os

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/billing"


def sqlalchemy_url(libpq_url: str) -> str:
    """DATABASE_URL is a libpq URL; SQLAlchemy wants its driver named."""
    for scheme in ("postgresql://", "postgres://"):
        if libpq_url.startswith(scheme):
            return "postgresql+psycopg2://" + libpq_url[len(scheme):]
    return libpq_url


class Config:
    DATABASE_URL = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = True
    # Outgoing mail (alerts, invoices).
    SMTP_HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    SMTP_USER = os.environ.get("SMTP_USER")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
    SMTP_STARTTLS = os.environ.get("SMTP_STARTTLS", "0") == "1"
    MAIL_FROM = os.environ.get("MAIL_FROM", "billing@localhost")
    # Invoice periods start at midnight and jobs are scheduled in this time zone.
    BILLING_TIMEZONE = os.environ.get("BILLING_TIMEZONE", "UTC")
    # FreeSWITCH event socket (optional: admin actions are disabled when unset).
    ESL_HOST = os.environ.get("ESL_HOST")
    ESL_PORT = int(os.environ.get("ESL_PORT", "8021"))
    ESL_PASSWORD = os.environ.get("ESL_PASSWORD", "ClueCon")
    # In-process scheduler; off for tests and for CLI invocations.
    SCHEDULER_ENABLED = os.environ.get("SCHEDULER_ENABLED", "0") == "1"
    PAGE_SIZE = 50


class ProductionConfig(Config):
    """Behind nginx with TLS (deploy/, docs/deployment.md): wsgi.py uses it when
    PORTAL_CONFIG=production. No fallback secret, secure cookies, and the proxy's
    X-Forwarded-For/-Proto/-Host trusted for PROXY_FIX_HOPS hops (the client address
    the login rate limit counts, https for redirects and HSTS)."""
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = "https"
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "1"))


CONFIGS = {"production": ProductionConfig}


def config_from_environment(default: type[Config]) -> type[Config]:
    """The class named by PORTAL_CONFIG (`production`), else `default`."""
    name = os.environ.get("PORTAL_CONFIG", "").strip().lower()
    if name and name not in CONFIGS:
        raise RuntimeError(f"PORTAL_CONFIG={name!r} is not one of: {', '.join(CONFIGS)} (or unset for development)")
    return CONFIGS.get(name, default)


class DevelopmentConfig(Config):
    # `make run` exports a generated SECRET_KEY; this fallback only serves a dev shell.
    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-not-secret"


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    SCHEDULER_ENABLED = False
    SMTP_PORT = 0
