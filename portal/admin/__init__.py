"""Back office: every view of this blueprint is for admins only.

Each feature is a module of this package (customers.py, cdrs.py, ...) that adds its
routes to `bp`; all modules are imported here, so a new file needs no registration.
"""
import importlib
import pkgutil

from flask import Blueprint, abort
from flask_login import current_user

from ..extensions import login_manager

bp = Blueprint("admin", __name__)


@bp.before_request
def admins_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role != "admin":
        abort(403)


for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
