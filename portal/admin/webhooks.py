"""Webhooks (docs/api.md): the operator's HTTPS endpoint, the events it gets and the
signing secret; and the delivery log (the webhook rows of the outbox) with retry."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField, SubmitField, widgets
from wtforms.validators import Length, Optional

from .. import audit
from ..choices import options
from ..errors import Refused
from ..extensions import db
from ..mail.outbox import retry
from ..models import MailMessage, Settings
from ..webhooks import services as webhooks
from . import bp
from .manage.common import arg_text, paginate

STATUSES = [("pending", "Pending"), ("sent", "Delivered"), ("failed", "Failed")]


class WebhookForm(FlaskForm):
    webhook_url = StringField("Endpoint URL", validators=[Optional(), Length(max=2000)],
                              description="HTTPS only. Empty switches webhooks off (nothing more is queued).")
    webhook_events = SelectMultipleField("Events", choices=options(webhooks.EVENTS.items()),
                                         widget=widgets.ListWidget(prefix_label=False),
                                         option_widget=widgets.CheckboxInput())
    rotate_secret = BooleanField("Make a new signing secret",
                                 description="The old one stops working at once: update the receiver too.")
    submit = SubmitField("Save webhooks")


@bp.route("/webhooks", methods=["GET", "POST"])
def webhooks_page():
    settings = Settings.get()
    form = WebhookForm(obj=None if request.method == "POST" else settings)
    status = 200
    if form.validate_on_submit():
        try:
            webhooks.configure(form.webhook_url.data, form.webhook_events.data or [], current_user.email,
                               rotate_secret=form.rotate_secret.data)
        except Refused as exc:
            getattr(form, exc.field or "webhook_url").errors = [str(exc)]
            db.session.rollback()
            status = 400
        else:
            db.session.commit()
            flash("Webhook settings saved.", "success")
            return redirect(url_for("admin.webhooks_page"))
    elif form.errors:
        status = 400
    state = arg_text("status")
    listing = paginate(webhooks.deliveries(status=state if state in dict(STATUSES) else None,
                                           event=arg_text("event") or None))
    return render_template("admin/webhooks.html", form=form, settings=Settings.get(), page=listing,
                           statuses=STATUSES, status=state, event_choices=[(e, e) for e in webhooks.EVENTS]), status


def _delivery(message_id: int) -> MailMessage:
    message = db.session.get(MailMessage, message_id)
    if message is None or message.channel != "webhook":
        abort(404)
    return message


@bp.route("/webhooks/<int:message_id>")
def webhook_detail(message_id: int):
    return render_template("admin/webhook_detail.html", message=_delivery(message_id))


@bp.route("/webhooks/<int:message_id>/retry", methods=["POST"])
def webhook_retry(message_id: int):
    _delivery(message_id)
    if retry(message_id):
        audit.record("retry", "webhook", message_id)
        db.session.commit()
        flash("The delivery will be tried again at the next run of the webhooks job (every minute).", "success")
    else:
        flash("This delivery already succeeded.", "warning")
    return redirect(url_for("admin.webhook_detail", message_id=message_id))
