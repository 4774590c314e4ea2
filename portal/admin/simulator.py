"""Routing simulator page."""
from __future__ import annotations

from flask import render_template, request

from . import bp
from ..choices import options
from ..extensions import db
from ..models import Customer, Endpoint
from ..simulator import services
from ._forms import SimulatorForm


@bp.route("/simulator")
def simulator():
    form = SimulatorForm(request.args)
    endpoints = db.session.execute(
        db.select(Endpoint.id, Endpoint.name, Customer.name).join(Customer).order_by(Customer.name, Endpoint.name)).all()
    form.endpoint_id.choices = options([("", "— type a source below —")] + [(str(i), f"{c} / {n}") for i, n, c in endpoints])
    conn = db.session.connection().connection.dbapi_connection
    result, error, available = None, None, services.available(conn)
    if available and request.args and form.validate():
        source_ip, sip_user = form.source_ip.data, form.sip_user.data
        if form.endpoint_id.data:
            endpoint = db.session.get(Endpoint, int(form.endpoint_id.data))
            if endpoint is not None and not source_ip and not sip_user:
                source_ip, sip_user = services.endpoint_source(endpoint)
        try:
            result = services.simulate(conn, source_ip, sip_user, form.caller_id.data, form.destination.data)
        except services.SimulatorError as e:
            error = str(e)
    return render_template("admin/simulator.html", form=form, result=result, error=error,
                           available=available)
