from flask import current_app, redirect, url_for
from flask_login import current_user, login_required

from . import bp


@bp.route("/")
@login_required
def index():
    """Each role lands on its own home: the back office or the self-care overview."""
    target = "admin.dashboard" if current_user.role == "admin" else "selfcare.overview"
    if target not in current_app.view_functions:  # feature not installed in this build
        return redirect(url_for("auth.login"))
    return redirect(url_for(target))
