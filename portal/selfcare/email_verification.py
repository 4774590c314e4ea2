"""The customer's e-mail address (alerts, daily balance, invoices) changes only when the
new mailbox proves it is theirs: a single-use link, valid EMAIL_VERIFICATION_HOURS, is
sent there; until it is opened, mail keeps going to the address verified before.

An address is exactly one mailbox (no lists such as `me@x.example,attacker@y.example`),
checked here, by the form and by the database (domain billing.customer_email, 0102)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import audit
from ..auth import tokens
from ..auth.forms import ActionForm
from ..customers.services import ONE_MAILBOX, is_one_mailbox  # noqa: F401  (the rule lives in the domain)
from ..extensions import db
from ..mail import outbox
from ..models import AccountToken, Customer, User
from . import bp, own_customer_id

def request_change(customer: Customer, address: str, actor: str) -> None:
    """Send the verification link to `address` (in the caller's transaction); the signed-in
    user asked for it, and only a user of this customer can confirm it."""
    hours = current_app.config["EMAIL_VERIFICATION_HOURS"]
    token = tokens.issue(current_user._get_current_object(), "email_verification", timedelta(hours=hours), email=address)
    url = tokens.link(url_for("selfcare.email_confirm", token=token))
    outbox.enqueue("email_verification", address, "Confirm your e-mail address for billing alerts",
                   render_template("mail/email_verification.txt", customer=customer, address=address, url=url,
                                   hours=hours), customer_id=customer.id)
    audit.record("email_verification_sent", "customer", customer.id, actor=actor, email=address)


def pending(customer_id: int) -> AccountToken | None:
    """The newest unused, unexpired verification of one of the customer's users."""
    return db.session.scalar(
        select(AccountToken).join(User, User.id == AccountToken.user_id)
        .where(User.customer_id == customer_id, AccountToken.purpose == "email_verification",
               AccountToken.used_at.is_(None), AccountToken.expires_at > datetime.now(timezone.utc))
        .order_by(AccountToken.created_at.desc()).limit(1))


def _token_of_this_customer(token: str) -> AccountToken:
    row = tokens.peek(token, "email_verification")
    # Another customer's link answers like an expired one: nothing to probe.
    if row is None or row.user.customer_id != own_customer_id():
        abort(404)
    return row


@bp.route("/settings/email/<token>", methods=["GET", "POST"])
def email_confirm(token: str):
    row = _token_of_this_customer(token)
    form = ActionForm()
    if form.validate_on_submit():
        row = tokens.consume(token, "email_verification")
        if row is None:
            abort(404)
        customer = db.session.get(Customer, own_customer_id())
        before = customer.email
        customer.email = row.email
        audit.record("email_verified", "customer", customer.id, actor=current_user.email, email=[before, row.email])
        db.session.commit()
        flash(f"{row.email} is confirmed: alerts and invoices go there from now on.", "success")
        return redirect(url_for(".settings"))
    return render_template("selfcare/email_confirm.html", form=form, address=row.email)
