"""Re-rating a period (customer and/or provider, days): preview what it would move
per customer, then apply it; both run in the background and the page shows progress
(portal/rerate/services.py over sql/procedures/21_rerate.sql)."""
from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from . import bp
from .. import audit
from ..choices import options
from ..extensions import db
from ..localtime import local_tz
from ..models import Customer, Provider, RerateJob
from ..rerate import services
from ..rerate.forms import RerateForm


def _connection():
    return db.session.connection().connection.dbapi_connection


def _inline() -> bool:
    return current_app.config.get("RERATE_INLINE", current_app.config.get("RATE_IMPORT_INLINE", current_app.testing))


def _form() -> RerateForm:
    form = RerateForm(request.form if request.method == "POST" else request.args or None)
    form.customer_id.choices = options([("", "All customers")] + [
        (str(i), n) for i, n in db.session.execute(db.select(Customer.id, Customer.name).order_by(Customer.name))])
    form.provider_id.choices = options([("", "All providers")] + [
        (str(i), n) for i, n in db.session.execute(db.select(Provider.id, Provider.name).order_by(Provider.name))])
    return form


def _run(job_id: int, what: str) -> None:
    if _inline():
        work = services.preview if what == "preview" else services.apply
        work(_connection(), job_id)
        db.session.commit()
    else:
        db.session.commit()
        services.start_background(current_app.config["DATABASE_URL"], job_id, what)


@bp.route("/rerate", methods=["GET", "POST"])
def rerate_new():
    form = _form()
    if request.method == "POST" and form.validate_on_submit():
        customer_id, provider_id = form.ids()
        try:
            job_id = services.create(_connection(), form.date_from.data, form.date_to.data, customer_id, provider_id,
                                     current_user.email)
        except services.RerateError as exc:
            form.form_errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
        else:
            audit.record("preview", "rerate", job_id, date_from=form.date_from.data, date_to=form.date_to.data,
                         customer_id=customer_id, provider_id=provider_id)
            _run(job_id, "preview")
            return redirect(url_for("admin.rerate_job", job_id=job_id))
    jobs = db.session.scalars(db.select(RerateJob).order_by(RerateJob.id.desc()).limit(20)).all()
    return render_template("admin/rerate.html", form=form, jobs=jobs), 400 if form.errors else 200


def _job(job_id: int) -> RerateJob:
    job = db.session.get(RerateJob, job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/rerate/<int:job_id>")
def rerate_job(job_id: int):
    job = _job(job_id)
    return render_template("admin/rerate_job.html", job=job, rows=services.preview_rows(job.preview or []),
                           totals=services.totals_by_currency(job.preview or []),
                           ledger=services.ledger_rows(job.result))


@bp.route("/rerate/<int:job_id>/status")
def rerate_job_status(job_id: int):
    job = _job(job_id)
    db.session.refresh(job)
    return jsonify(status=job.status, phase=job.phase, processed_lines=job.step, total_lines=job.steps,
                   percent=min(100, int(100 * job.step / job.steps)) if job.steps else None,
                   done=job.status in ("previewed", "done", "failed"))


@bp.route("/rerate/<int:job_id>/apply", methods=["POST"])
def rerate_apply(job_id: int):
    job = _job(job_id)
    if job.status != "previewed":
        flash("Only a previewed re-rate can be applied: preview it (again) first.", "warning")
        return redirect(url_for("admin.rerate_job", job_id=job.id))
    audit.record("apply", "rerate", job.id, period_from=job.period_from, period_to=job.period_to,
                 customer_id=job.customer_id, provider_id=job.provider_id)
    job.status, job.phase, job.step, job.steps = "running", "queued", 0, 3
    db.session.flush()   # before the job writes its own state through SQL
    try:
        _run(job.id, "apply")
    except services.RerateError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    return redirect(url_for("admin.rerate_job", job_id=job.id))


@bp.route("/rerate/<int:job_id>/again", methods=["POST"])
def rerate_again(job_id: int):
    """Preview the same selection again (the data may have changed since)."""
    job = _job(job_id)
    if job.status in ("previewing", "running"):
        flash("This re-rate is still running.", "warning")
        return redirect(url_for("admin.rerate_job", job_id=job.id))
    first = job.period_from.astimezone(local_tz()).date()
    last = (job.period_to.astimezone(local_tz()) - timedelta(days=1)).date()
    new_id = services.create(_connection(), first, last, job.customer_id, job.provider_id, current_user.email)
    _run(new_id, "preview")
    return redirect(url_for("admin.rerate_job", job_id=new_id))
