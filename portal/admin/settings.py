"""Settings: the one typed row of billing.settings (read inside call set-up)."""
from __future__ import annotations

from flask import flash, redirect, url_for

from ..models import Settings
from . import bp
from .manage import services
from .manage.common import render_form_page
from .manage.forms import SettingsForm, form_data


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    form = SettingsForm(obj=Settings.get())
    if form.validate_on_submit():
        try:
            services.update_settings(form_data(form))
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash("Settings saved. New calls use them at once.", "success")
            return redirect(url_for("admin.settings"))
    return render_form_page(form, "Settings", None, links=[("Audit log", url_for("admin.audit_log"))],
                            intro="Switch-wide values: the maximum call length caps every call's duration; the SIP "
                                  "domain is the realm of SIP accounts; company details appear on invoices.")
