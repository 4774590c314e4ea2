"""CDR browser: filters, keyset pages, totals, streaming CSV export, re-rate."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, abort, flash, jsonify, redirect, render_template, request, stream_with_context, url_for

from . import bp
from .. import audit
from ..choices import options
from ..cdrs import services
from ..cdrs.forms import CdrFilterForm
from ..extensions import db
from ..models import Customer, Endpoint, Gateway, Provider


def _connection():
    return db.session.connection().connection.dbapi_connection


ENDPOINT_CHOICES_MAX = 200


def _form() -> CdrFilterForm:
    form = CdrFilterForm(request.args)
    form.customer_id.choices = options([("", "Any")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Customer.id, Customer.name).order_by(Customer.name))])
    # Endpoints: those of the chosen customer; all of them only while there are few.
    endpoints = db.select(Endpoint.id, Endpoint.name).order_by(Endpoint.name)
    customer = request.args.get("customer_id", "")
    chosen = request.args.get("endpoint_id", "")
    if customer.isdigit():
        endpoints = endpoints.where(Endpoint.customer_id == int(customer))
    else:
        endpoints = endpoints.limit(ENDPOINT_CHOICES_MAX + 1)
    rows = db.session.execute(endpoints).all()
    if not customer.isdigit() and len(rows) > ENDPOINT_CHOICES_MAX:
        rows = db.session.execute(db.select(Endpoint.id, Endpoint.name).where(
            Endpoint.id == int(chosen))).all() if chosen.isdigit() else []
        first = ("", "Any (choose a customer to list its endpoints)")
    else:
        first = ("", "Any")
    form.endpoint_id.choices = options([first] + [(str(i), n) for i, n in rows])
    form.provider_id.choices = options([("", "Any")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Provider.id, Provider.name).order_by(Provider.name))])
    form.gateway.choices = options([("", "Any")] + [(n, n) for (n,) in db.session.execute(
        db.select(Gateway.name).order_by(Gateway.name))])
    return form


def _filter(form: CdrFilterForm) -> services.CdrFilter:
    """The filter of a validated form; invalid fields are left out (errors shown beside them)."""
    def ident(field):
        return int(field.data) if field.data and str(field.data).isdigit() and not field.errors else None

    def value(field):
        return field.data or None if not field.errors else None

    return services.CdrFilter(
        date_from=value(form.date_from), date_to=value(form.date_to),
        customer_id=ident(form.customer_id), endpoint_id=ident(form.endpoint_id),
        provider_id=ident(form.provider_id), gateway=value(form.gateway), prefix=value(form.prefix),
        hangup_cause=value(form.hangup_cause), answered=value(form.answered), status=value(form.status))


@bp.route("/cdrs")
def cdrs():
    form = _form()
    form.validate()
    flt = _filter(form)
    conn = _connection()
    try:
        result = services.page(conn, flt, older_than=request.args.get("older"), newer_than=request.args.get("newer"))
    except services.CdrError as e:
        flash(str(e), "warning")
        return redirect(url_for("admin.cdrs", **{k: v for k, v in request.args.items() if k not in ("older", "newer")}))
    show_totals = request.args.get("totals") == "1"
    totals = services.totals(conn, flt) if show_totals else None
    unrated = services.unrated_raw(conn) if flt.status == "unrated" else []
    filter_args = {k: v for k, v in request.args.items() if k not in ("older", "newer", "totals") and v}
    return render_template("admin/cdrs.html", form=form, page=result, totals=totals, unrated=unrated,
                           filter_args=filter_args, rerate_available=services.rerate_available(conn))


@bp.route("/cdrs/totals")
def cdrs_totals():
    form = _form()
    form.validate()
    totals = services.totals(_connection(), _filter(form))
    return jsonify(totals={k: (str(v) if v is not None and not isinstance(v, (int, list)) else v)
                           for k, v in totals.items() if k != "by_currency"},
                   display=services.display_totals(totals))


@bp.route("/cdrs/export.csv")
def cdrs_export():
    form = _form()
    if not form.validate():
        abort(400, "Fix the filter first: " + "; ".join(f"{f}: {e[0]}" for f, e in form.errors.items()))
    flt = _filter(form)
    filename = f"cdrs-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.csv"
    def rows():
        # The connection is taken here, inside the re-pushed contexts: the view's own
        # session is closed (and its connection back in the pool) before streaming starts.
        yield from services.export_csv(_connection(), flt)

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/cdrs/raw/<int:fs_cdr_id>/rerate", methods=["POST"])
def cdr_rerate(fs_cdr_id: int):
    try:
        status = services.rerate(_connection(), fs_cdr_id)
    except services.CdrError as e:
        flash(str(e), "danger")
    else:
        audit.record("rerate", "fs_cdr", fs_cdr_id, status=status)
        db.session.commit()
        flash(f"Raw CDR {fs_cdr_id} re-rated: now {status}.", "success" if status == "rated" else "warning")
    target = request.form.get("next", "")
    if not target.startswith("/admin/") or "//" in target or "\\" in target:
        target = url_for("admin.cdrs", status="unrated")
    return redirect(target)
