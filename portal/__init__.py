"""The billing portal: back office for admins, self care for customers."""
from __future__ import annotations

import importlib
import logging
import secrets

import click
from flask import Flask, abort, g, render_template, request

from . import localtime, proxy, replica
from .config import Config, secret_key_problem, sqlalchemy_url
from .extensions import csrf, db, login_manager

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


def create_app(config_class: type[Config] = Config, **overrides) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(config_class)
    app.config.update(overrides)
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE", False))
    _require_secret_key(app)
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(app.config["DATABASE_URL"])

    db.init_app(app)
    with app.app_context():
        localtime.install(app, db.engine)
    replica.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "warning"
    proxy.install(app)

    from . import models  # noqa: F401  (register mappers)

    @login_manager.user_loader
    def load_user(user_id: str):
        """The session and the remember-me cookie hold "<id>.<session_version>": a cookie
        issued before the user signed out, changed the password or was signed out by an
        admin carries an older version and signs nobody in."""
        ident, _, version = user_id.partition(".")
        if not (ident.isdigit() and version.isdigit() and len(ident) <= 18 and len(version) <= 9):
            return None
        user = db.session.get(models.User, int(ident))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    for module_name, prefix in BLUEPRINTS:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp, url_prefix=prefix or None)
    from .api import init_app as init_api  # the REST API: flask-smorest blueprints under /api/v1

    init_api(app)
    for module_name in CLI_MODULES:
        importlib.import_module(module_name).register_cli(app)

    app.config["NAV_ENDPOINTS"] = frozenset(app.view_functions)
    _register_filters(app)
    _register_input_guard(app)
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


def _require_secret_key(app: Flask) -> None:
    """Sessions are signed with SECRET_KEY: without a real one anybody could forge an admin
    session, so the portal refuses to start. Commands of `flask --app wsgi` other than
    `run` (db upgrade, provision, jobs ...) serve no request and sign nothing that outlives
    them: when the key is unset they get a throwaway one."""
    problem = secret_key_problem(app.config.get("SECRET_KEY"))
    if problem is None:
        return
    if not app.config.get("SECRET_KEY") and _loading_for_a_cli_command():
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        return
    raise RuntimeError(f"{problem}: export SECRET_KEY=<a random string, 64 hex digits such as the output of "
                       "`python3 -c 'import secrets; print(secrets.token_hex(32))'`> (make run generates one "
                       "and keeps it in var/secret_key)")


def _loading_for_a_cli_command() -> bool:
    """True while the flask CLI loads the app to find one of the app's own commands (its
    group is running); `flask run` and `flask shell` load it inside their own command."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, click.Group)


def _register_filters(app: Flask) -> None:
    from . import formatting

    app.jinja_env.filters["money"] = formatting.money_filter
    app.jinja_env.filters["money_exact"] = formatting.money_exact_filter   # = money(cur, exact=True)
    app.jinja_env.filters["rate"] = formatting.rate_filter
    app.jinja_env.filters["dt"] = formatting.datetime_short
    app.jinja_env.filters["duration"] = formatting.duration
    app.jinja_env.globals["url_with"] = formatting.url_with
    app.jinja_env.globals["timezone_name"] = formatting.timezone_name
    app.jinja_env.globals["minor_units"] = formatting.minor_units
    app.jinja_env.globals["input_attrs"] = formatting.input_attrs


def _register_input_guard(app: Flask) -> None:
    """A NUL character can be typed into no form and stored in no PostgreSQL text: a
    request that carries one (path, query string or form) is refused before any view
    passes it to the database, where it would fail as a 500."""

    @app.before_request
    def refuse_nul_characters():
        fields = request.args.items(multi=True)
        if request.method == "POST" and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields = list(fields) + list(request.form.items(multi=True))
        if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in fields):
            abort(400, description="The request contains a NUL character (%00), which no field accepts.")


def _database_unreachable(exc: BaseException) -> bool:
    """Connection refused, lost, or the server shutting down (SQLSTATE classes 08, 57P)
    — not a query's own error (those are bugs or bad input)."""
    from sqlalchemy.exc import DBAPIError

    orig = getattr(exc, "orig", exc)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = getattr(orig, "pgcode", None)
    if code is None:
        import psycopg2

        return isinstance(orig, (psycopg2.OperationalError, psycopg2.InterfaceError))
    return code.startswith("08") or code.startswith("57P")


def _register_error_pages(app: Flask) -> None:
    """HTML error pages for people; under /api/ the same errors are RFC 9457 problem
    details (portal/api/problems.py)."""
    from sqlalchemy.exc import DBAPIError

    from .admin.manage.services import AdminError
    from .api import problems
    from .errors import Refused

    def render_error(code: int, title: str, message: str, e=None):
        if problems.handles():
            return problems.from_http_exception(e) if e is not None else problems.problem(code, message)
        return render_template("errors/error.html", code=code, title=title, message=message), code

    @app.errorhandler(400)
    def bad_request(e):
        return render_error(400, "Bad request", getattr(e, "description", None) or "The request could not be understood.",
                            e)

    @app.errorhandler(403)
    def forbidden(e):
        return render_error(403, "Forbidden", "You do not have access to this page.", e)

    @app.errorhandler(404)
    def not_found(e):
        return render_error(404, "Not found", "There is nothing at this address.", e)

    @app.errorhandler(429)
    def too_many(e):
        return render_error(429, "Too many requests", "Slow down and try again in a minute.", e)

    @app.errorhandler(500)
    def server_error(e):
        original = getattr(e, "original_exception", None)
        if original is not None and _database_unreachable(original):
            return database_down(original)
        db.session.rollback()
        return render_error(500, "Something went wrong", "The error was logged. Try again, or contact the operator.",
                            e)

    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def other_http_errors(e):
        """405, 413, 422 ...: werkzeug's own answer on pages, a problem under /api/."""
        return problems.from_http_exception(e) if problems.handles() else e

    @app.errorhandler(Refused)
    def refused(e):
        """A domain service's refusal that reached no view's handler: the API's 404/422."""
        if not problems.handles():
            raise e
        db.session.rollback()
        return problems.refused(e)

    @app.errorhandler(AdminError)
    def admin_refused(e):
        if not problems.handles():
            raise e
        db.session.rollback()
        return problems.admin_refused(e)

    @app.errorhandler(DBAPIError)
    def database_error(e):
        if not _database_unreachable(e):
            raise e
        return database_down(e)

    def database_down(e):
        """503 with its own page: no database query, no current_user, no session."""
        app.logger.error("database unreachable: %s", getattr(e, "orig", e))
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; nothing to roll back
            pass
        # Flask-Login's template context would load the user (a query) once more.
        g._login_user = login_manager.anonymous_user()
        seconds = app.config.get("DATABASE_DOWN_RETRY_AFTER", 30)
        if problems.handles():
            return problems.problem(503, "The database is unreachable; try again shortly.", code="unavailable",
                                    headers={"Retry-After": str(seconds)})
        page = render_template("errors/unavailable.html", seconds=seconds)
        return page, 503, {"Retry-After": str(seconds)}


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
