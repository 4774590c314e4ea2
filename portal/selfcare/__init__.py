"""Self care: every view of this blueprint is for customer users. The views ask the
shared domain services (portal/cdrs, ledger, rates, endpoints, customers) with
`own_customer_id()` as the customer scope, and nothing else. A row of another
customer answers 404 (not 403), so ids of other customers' data cannot be probed.

Feature modules of this package add routes to `bp`; all are imported here.
"""
import importlib
import pkgutil

from flask import Blueprint, abort
from flask_login import current_user

from ..extensions import login_manager

bp = Blueprint("selfcare", __name__)


@bp.before_request
def customers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role != "customer" or current_user.customer_id is None:
        abort(403)


def own_customer_id() -> int:
    """The only customer id a self-care query may use."""
    return current_user.customer_id


for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
