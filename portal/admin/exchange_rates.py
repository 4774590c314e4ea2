"""Exchange rates: list, add (a new version closes the one it replaces), close, CSV
import and export (docs/billing.md, "Currencies")."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import bp
from .. import csvstream
from ..exchange import services
from ..formatting import moment_text
from ..exchange.forms import CloseForm, ExchangeRateForm, ImportForm
from ..extensions import db
from ..models import ExchangeRate
from .manage.common import arg_text, get_or_404, paginate, render_form_page

STATES = [("current", "Valid now"), ("future", "Starting later"), ("ended", "Ended")]


@bp.route("/exchange-rates")
def exchange_rates():
    page = paginate(services.listing(arg_text("pair"), arg_text("state")))
    return render_template("admin/exchange_rates.html", page=page, states=STATES, missing=services.missing_pairs(),
                           import_form=ImportForm(), now=services.now())


@bp.route("/exchange-rates/new", methods=["GET", "POST"])
def exchange_rate_new():
    form = ExchangeRateForm()
    if not form.is_submitted():
        form.from_currency.data = request.args.get("from", "")
        form.to_currency.data = request.args.get("to", "")
    back = url_for("admin.exchange_rates")
    if form.validate_on_submit():
        try:
            added = services.add(form.from_currency.data, form.to_currency.data, form.rate.data,
                                 form.valid_from.data, form.valid_to.data, actor=current_user.email)
            db.session.commit()
        except services.ExchangeRateError as exc:
            db.session.rollback()
            form.form_errors.append(exc.sentence)
        else:
            _flash_added(added.rate.pair, added.closed, added.in_the_past)
            return redirect(url_for("admin.exchange_rates", pair=f"{added.rate.from_currency}-{added.rate.to_currency}"))
    return render_form_page(form, "New exchange rate", back, [("Exchange rates", back)],
                            intro="Converts a provider's costs into a customer's currency, in call set-up (the "
                                  "ranking and the margin check) and in CDR billing.")


def _flash_added(pair: str, closed: list, in_the_past: bool) -> None:
    message = f"{pair} rate added."
    if closed:
        message += f" {len(closed)} earlier version(s) now end where it starts."
    flash(message, "success")
    if in_the_past:
        flash("It starts in the past: calls already billed keep their converted cost until their period is "
              "re-rated (Re-rate).", "warning")


@bp.route("/exchange-rates/<int:rate_id>/close", methods=["GET", "POST"])
def exchange_rate_close(rate_id: int):
    rate = get_or_404(ExchangeRate, rate_id)
    form = CloseForm()
    pair = rate.pair
    back = url_for("admin.exchange_rates", pair=f"{rate.from_currency}-{rate.to_currency}")
    if form.validate_on_submit():
        try:
            closed = services.close(rate_id, form.at.data, actor=current_user.email)
            db.session.commit()
        except services.ExchangeRateError as exc:
            db.session.rollback()
            form.form_errors.append(exc.sentence)
        else:
            if closed is None:
                flash(f"{pair} rate removed: it had not started.", "success")
            else:
                flash(f"{pair} rate ends at {moment_text(closed.valid_to)}.", "success")
            return redirect(back)
    until = moment_text(rate.valid_to) if rate.valid_to else "open"
    return render_form_page(form, f"Close the {pair} rate {rate.rate.normalize():f}", back,
                            [("Exchange rates", url_for("admin.exchange_rates"))],
                            intro=f"Valid from {moment_text(rate.valid_from)} to {until}. After its end, "
                                  f"routes in {rate.from_currency} are not offered to {rate.to_currency} customers "
                                  "unless another rate is valid.")


@bp.route("/exchange-rates/import", methods=["POST"])
def exchange_rates_import():
    form = ImportForm()
    errors = []
    if form.validate_on_submit():
        content = form.file.data.read(2_000_000).decode("utf-8-sig", errors="replace")
        try:
            result = services.import_csv(content, actor=current_user.email)
            db.session.commit()
        except services.ExchangeRateError as exc:
            db.session.rollback()
            errors = exc.errors or [{"line": None, "column": "", "value": "", "message": str(exc)}]
            flash(f"Nothing was imported: {len(errors)} problem(s), listed below by line." if exc.errors
                  else f"Nothing was imported: {exc}.", "danger")
        else:
            flash(f"{len(result.added)} exchange rate(s) imported; {result.closed} earlier version(s) closed.", "success")
            if result.in_the_past:
                flash("Some start in the past: calls already billed keep their converted cost until their period "
                      "is re-rated (Re-rate).", "warning")
            return redirect(url_for("admin.exchange_rates"))
    else:
        flash("Choose a CSV file to import.", "danger")
    page = paginate(services.listing())
    return render_template("admin/exchange_rates.html", page=page, states=STATES, missing=services.missing_pairs(),
                           import_form=form, import_errors=errors, now=services.now()), 400


@bp.route("/exchange-rates.csv")
def exchange_rates_csv():
    rows = services.export_rows()
    return csvstream.response(f"exchange-rates-{datetime.now(timezone.utc):%Y%m%d}.csv", services.CSV_COLUMNS,
                              lambda: [rows])
