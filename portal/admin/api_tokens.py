"""API tokens of the REST API (docs/api.md): admins create them (the token is shown
once, on the answer to the form, and stored hashed) and revoke them; the list shows
each token's scope, customer, expiry and when it was last used."""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ..apitokens import services as tokens
from ..choices import options
from ..errors import Refused
from ..extensions import db
from ..localtime import local_tz
from ..models import Customer
from . import bp
from .manage.common import arg_text, paginate


class ApiTokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)],
                       description="What uses it, e.g. 'CRM sync' or 'payments (Stripe webhook)'.")
    scope = SelectField("Scope", choices=options(tokens.SCOPES.items()), default="read")
    customer_id = SelectField("Customer (customer scope only)", coerce=int)
    expires_on = DateField("Expires on", validators=[Optional()],
                           description="The token stops working at the start of this day; empty: until revoked.")
    submit = SubmitField("Create token")


def _form() -> ApiTokenForm:
    form = ApiTokenForm()
    form.customer_id.choices = options([(0, "— none —")] + [(c.id, c.name) for c in db.session.scalars(
        select(Customer).order_by(Customer.name))])
    return form


def _page(form: ApiTokenForm, status: int = 200):
    listing = paginate(tokens.listing(include_revoked=arg_text("show") == "all"))
    return render_template("admin/api_tokens.html", page=listing, form=form, scopes=tokens.SCOPES,
                           now=datetime.now(timezone.utc), show_all=arg_text("show") == "all"), status


@bp.route("/api-tokens")
def api_tokens():
    return _page(_form())


@bp.route("/api-tokens/new", methods=["POST"])
def api_token_new():
    form = _form()
    if not form.validate_on_submit():
        return _page(form, 400)
    expires = datetime.combine(form.expires_on.data, time.min, local_tz()) if form.expires_on.data else None
    try:
        row, token = tokens.issue(form.name.data, form.scope.data, customer_id=form.customer_id.data or None,
                                  expires_at=expires, actor=current_user.email)
    except Refused as exc:
        field = form.expires_on if exc.field == "expires_at" else getattr(form, exc.field or "name", form.name)
        field.errors = list(field.errors) + [str(exc)]
        return _page(form, 400)
    db.session.commit()
    # The token is in this answer only (never in a flash: the session cookie is signed, not encrypted).
    return render_template("admin/api_token_created.html", row=row, token=token)


@bp.route("/api-tokens/<int:token_id>/revoke", methods=["POST"])
def api_token_revoke(token_id: int):
    try:
        row = tokens.revoke(token_id, current_user.email)
    except Refused:
        flash("There is no such token.", "warning")
        return redirect(url_for("admin.api_tokens"))
    db.session.commit()
    flash(f"Token {row.name} ({row.token_prefix}…) is revoked: every request with it is refused from now on.",
          "success")
    return redirect(url_for("admin.api_tokens"))
