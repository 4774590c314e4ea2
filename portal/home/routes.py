from flask import abort, current_app, redirect, url_for
from flask_login import current_user, login_required

from . import bp

# Where each role lands, in order of preference (features may be absent from a build).
LANDING = {
    "admin": ("admin.dashboard", "admin.customers"),
    "finance": ("admin.dashboard", "admin.customers"),
    "support": ("admin.dashboard", "admin.customers"),
    "customer": ("selfcare.overview",),
}


@bp.route("/")
@login_required
def index():
    """Each role lands on its own home: the back office or the self-care overview."""
    for endpoint in LANDING.get(current_user.role, ()):
        if endpoint in current_app.view_functions:
            return redirect(url_for(endpoint))
    abort(404)
