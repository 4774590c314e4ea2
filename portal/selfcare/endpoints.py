"""SIP accounts and IP endpoints; customers may change a SIP account's password."""
from flask import abort, render_template, url_for
from flask_login import current_user

from .. import dbapi
from ..endpoints import services
from ..errors import NotFound
from . import bp, own_customer_id
from ._forms import SipPasswordForm
from ._views import submit


@bp.route("/endpoints")
def endpoints():
    rows = services.listing(dbapi.connection(), customer_id=own_customer_id())
    return render_template("selfcare/endpoints.html", sip=[r for r in rows if r["auth"] == "sip"],
                           ip=[r for r in rows if r["auth"] == "ip"], sip_domain=services.sip_domain())


@bp.route("/endpoints/<int:endpoint_id>/password", methods=["GET", "POST"])
def endpoints_password(endpoint_id: int):
    customer_id = own_customer_id()
    try:
        endpoint = services.sip_account(endpoint_id, customer_id=customer_id)
    except NotFound:
        abort(404)
    form = SipPasswordForm(username=endpoint.username)
    done = submit(form, lambda: services.change_sip_password(
        endpoint.id, form.password.data, customer_id=customer_id, actor=current_user.email),
        f"The SIP password of {endpoint.username} is changed. Enter it in your phone or PBX now: "
        "it stops registering with the old one.", url_for(".endpoints"))
    return done or render_template("selfcare/endpoint_password.html", form=form, endpoint=endpoint,
                                   sip_domain=services.sip_domain(), suggestion=services.suggest_sip_password())
