"""FreeSWITCH page: live calls with hang-up, gateway rescan / killgw over the event socket."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from . import bp
from .. import audit
from ..extensions import db
from ..models import Gateway
from ..switch import services


@bp.route("/switch")
def switch():
    calls, error, configured = [], None, bool(current_app.config.get("ESL_HOST"))
    if configured:
        try:
            calls = services.live_calls(current_app.config)
        except services.SwitchError as e:
            error = str(e)
    gateways = db.session.scalars(db.select(Gateway).order_by(Gateway.name)).all()
    esl = services.settings(current_app.config)
    return render_template("admin/switch.html", calls=calls, error=error, configured=configured, gateways=gateways,
                           settings=esl, esl=f"{esl['host']}:{esl['port']}",
                           explanation=services.explain(error, current_app.config) if error else None)


def _failed(what: str, e: services.SwitchError) -> None:
    flash(f"{what} failed. {services.explain(str(e), current_app.config)}", "danger")


@bp.route("/switch/calls/<call_uuid>/hangup", methods=["POST"])
def switch_hangup(call_uuid: str):
    try:
        services.hangup(current_app.config, call_uuid)
    except services.SwitchError as e:
        _failed(f"Hanging up {call_uuid}", e)
    else:
        audit.record("hangup", "call", call_uuid)
        db.session.commit()
        flash(f"Call {call_uuid} hung up.", "success")
    return redirect(url_for("admin.switch"))


@bp.route("/switch/gateways/<name>/<action>", methods=["POST"])
def switch_gateway(name: str, action: str):
    if db.session.scalar(db.select(Gateway.id).where(Gateway.name == name)) is None:
        flash(f"There is no gateway {name}.", "danger")
        return redirect(url_for("admin.switch"))
    try:
        output = services.gateway_action(current_app.config, action, name)
    except services.SwitchError as e:
        _failed(f"{action} {name}", e)
    else:
        audit.record(action, "gateway", name, output=output[:200])
        db.session.commit()
        flash(f"{action} {name}: {output[:200]}", "success")
    return redirect(url_for("admin.switch"))
