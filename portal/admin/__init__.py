"""Back office: every view of this blueprint is for staff (admin, finance, support), each
route as its rule in access.py allows.

Each feature is a module of this package (customers.py, cdrs.py, ...) that adds its
routes to `bp`; all modules are imported here, so a new file needs no registration
(but a rule in access.py: without one a route is admin-only and a test fails).
"""
import importlib
import pkgutil

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from ..extensions import login_manager
from .access import allowed

bp = Blueprint("admin", __name__)


@bp.before_request
def staff_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(403)
    from ..auth import two_factor

    if not current_user.two_factor_enabled and two_factor.required_for(current_user):
        flash("The operator requires two-factor sign-in for staff: set it up to continue.", "warning")
        return redirect(url_for("auth.two_factor_setup"))
    if not allowed(current_user.role, request.endpoint):
        abort(403)


@bp.app_context_processor
def role_rules():
    """`can('admin.customer_edit')` in templates: show only what the user may use."""
    def can(endpoint: str) -> bool:
        return current_user.is_authenticated and getattr(current_user, "is_staff", False) \
            and allowed(current_user.role, endpoint)
    return {"can": can}


for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_") and _module != "access":
        importlib.import_module(f"{__name__}.{_module}")
