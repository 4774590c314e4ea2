"""CDR browser: filters and number search, keyset pages, totals, streaming CSV export,
re-rate, and the detail page of one call."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from . import bp
from .. import audit, csvstream
from ..cdrs import causes, services
from ..choices import options
from ..dbapi import connection as _connection
from ..endpoints.services import names as endpoint_names
from ..extensions import db
from ..localtime import local_today
from ..models import Customer, Endpoint, Gateway, Provider
from ..replica import reads_replica
from ..reports import services as report_services
from ._forms import CdrFilterForm

ENDPOINT_CHOICES_MAX = 200


def _form() -> CdrFilterForm:
    form = CdrFilterForm(request.args)
    form.customer_id.choices = options([("", "Any")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Customer.id, Customer.name).order_by(Customer.name))])
    # Endpoints: those of the chosen customer; all of them only while there are few.
    customer = request.args.get("customer_id", "")
    chosen = request.args.get("endpoint_id", "")
    rows = [(e["id"], e["name"]) for e in endpoint_names(
        _connection(), customer_id=int(customer) if customer.isdigit() else None,
        limit=None if customer.isdigit() else ENDPOINT_CHOICES_MAX + 1)]
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
    """The filter of a validated form; invalid fields are left out (errors shown beside them).

    A search for digits anywhere in a number reads every call of its date range, so its
    range is bounded (services.contains_window) and written back into the form. A
    number search that cannot run finds nothing (its error is beside the field), rather
    than silently listing every call."""
    def ident(field):
        return int(field.data) if field.data and str(field.data).isdigit() and not field.errors else None

    def value(field):
        return field.data or None if not field.errors else None

    kw = dict(date_from=value(form.date_from), date_to=value(form.date_to),
              customer_id=ident(form.customer_id), endpoint_id=ident(form.endpoint_id),
              provider_id=ident(form.provider_id), gateway=value(form.gateway), prefix=value(form.prefix),
              hangup_cause=value(form.hangup_cause), answered=value(form.answered), status=value(form.status),
              review=form.review.data == "yes")
    if form.number.data or form.number.errors:
        kw.update(number_in=form.number_in.data if form.number_in.data in services.NUMBER_FIELDS else "either",
                  match=form.match.data if form.match.data in services.MATCHES else "prefix",
                  number=value(form.number))
        kw["nothing"] = kw["number"] is None
        if kw["match"] == "contains" and kw["number"]:
            try:
                kw["date_from"], kw["date_to"] = services.contains_window(kw["date_from"], kw["date_to"],
                                                                          local_today())
                for field, day in ((form.date_from, kw["date_from"]), (form.date_to, kw["date_to"])):
                    field.data, field.raw_data = day, [day.isoformat()]
            except services.CdrError as e:
                form.match.errors = [str(e)]
                kw["nothing"] = True
    return services.CdrFilter(**kw)


@bp.route("/cdrs")
@reads_replica
def cdrs():
    form = _form()
    valid = form.validate()
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
                           filter_args=filter_args, rerate_available=services.rerate_available(conn),
                           totals_currency=report_services.currency_of(conn, flt.customer_id)), \
        200 if valid and not form.match.errors else 400


@bp.route("/cdrs/<int:cdr_id>")
@reads_replica
def cdr_detail(cdr_id: int):
    conn = _connection()
    call = services.call_detail(conn, cdr_id)
    if call is None:
        abort(404)
    return render_template("admin/cdr_detail.html", call=call, causes=causes,
                           rerate_available=services.rerate_available(conn))


@bp.route("/cdrs/totals")
@reads_replica
def cdrs_totals():
    form = _form()
    if not form.validate():
        return jsonify(errors=form.errors), 400
    conn, flt = _connection(), _filter(form)
    totals = services.totals(conn, flt)
    return jsonify(totals={k: (str(v) if v is not None and not isinstance(v, int) else v)
                           for k, v in totals.items() if k != "by_currency"},
                   display=services.display_totals(totals, report_services.currency_of(conn, flt.customer_id)))


@bp.route("/cdrs/export.csv")
@reads_replica
def cdrs_export():
    form = _form()
    if not form.validate():
        abort(400, "Fix the filter first: " + "; ".join(f"{f}: {e[0]}" for f, e in form.errors.items()))
    flt = _filter(form)
    if form.match.errors:
        abort(400, "Fix the filter first: " + "; ".join(form.match.errors))
    return csvstream.export_response(f"cdrs-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.csv", services.export(flt))


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
