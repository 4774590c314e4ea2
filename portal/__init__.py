"""The billing portal: back office for admins, self care for customers."""
from __future__ import annotations

import importlib
import logging

from flask import Flask, render_template, request

from .config import Config, DevelopmentConfig, sqlalchemy_url
from .extensions import csrf, db, limiter, login_manager

# (module, url_prefix). Each module exposes `bp`. URL prefixes are set here only.
BLUEPRINTS = [
    ("portal.auth", ""),
    ("portal.home", ""),
    ("portal.admin", "/admin"),
    ("portal.selfcare", "/my"),
]

# Modules exposing `register_cli(app)`.
CLI_MODULES = [
    "portal.cli",
    "portal.provisioning.cli",
    "portal.billing.cli",
    "portal.jobs.cli",
]


def create_app(config_class: type[Config] = DevelopmentConfig, **overrides) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(config_class)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set: export SECRET_KEY (make run generates one)")
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(app.config["DATABASE_URL"])

    if app.config.get("PROXY_FIX_HOPS"):
        # Behind nginx: trust its X-Forwarded-* headers for that many hops.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "warning"

    from . import models  # noqa: F401  (register mappers)

    @login_manager.user_loader
    def load_user(user_id: str):
        user = db.session.get(models.User, int(user_id))
        return user if user is not None and user.active else None

    for module_name, prefix in BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp, url_prefix=prefix or None)
    for module_name in CLI_MODULES:
        importlib.import_module(module_name).register_cli(app)

    app.config["NAV_ENDPOINTS"] = frozenset(app.view_functions)
    _register_filters(app)
    _register_error_pages(app)
    _register_security_headers(app)
    if app.config.get("SCHEDULER_ENABLED"):
        try:
            from .jobs.scheduler import start_scheduler
        except ImportError:  # jobs package not installed in this build
            logging.getLogger(__name__).warning("scheduler requested but portal.jobs is missing")
        else:
            start_scheduler(app)
    return app


def _register_filters(app: Flask) -> None:
    from . import formatting

    app.jinja_env.filters["money"] = formatting.money
    app.jinja_env.filters["rate"] = formatting.rate
    app.jinja_env.filters["dt"] = formatting.datetime_short
    app.jinja_env.filters["duration"] = formatting.duration
    app.jinja_env.globals["url_with"] = formatting.url_with


def _register_error_pages(app: Flask) -> None:
    def render_error(code: int, title: str, message: str):
        return render_template("errors/error.html", code=code, title=title, message=message), code

    @app.errorhandler(400)
    def bad_request(e):
        return render_error(400, "Bad request", getattr(e, "description", None) or "The request could not be understood.")

    @app.errorhandler(403)
    def forbidden(e):
        return render_error(403, "Forbidden", "You do not have access to this page.")

    @app.errorhandler(404)
    def not_found(e):
        return render_error(404, "Not found", "There is nothing at this address.")

    @app.errorhandler(429)
    def too_many(e):
        return render_error(429, "Too many requests", "Slow down and try again in a minute.")

    @app.errorhandler(500)
    def server_error(e):
        db.session.rollback()
        return render_error(500, "Something went wrong", "The error was logged. Try again, or contact the operator.")


def _register_security_headers(app: Flask) -> None:
    csp = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
