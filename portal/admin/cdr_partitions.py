"""Back office: the monthly partitions of billing.cdr -- live, archived to a file,
restored -- with Archive and Restore, which run in the background while the page shows
their phase (portal/retention/services.py; docs/scaling-retention.md)."""
from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user

from . import bp
from ._forms import CdrArchiveForm, CdrRetentionForm
from .. import audit
from ..extensions import db
from ..models import CdrArchiveTask, Settings
from ..retention import archive_dir, billing_timezone
from ..retention import services

PHASES = {"archive": ["starting", "checking", "writing the file", "verifying the file", "dropping the partition"],
          "restore": ["starting", "checking the archive", "loading the rows", "counting the rows",
                      "attaching the partition"]}


def _connection():
    return db.session.connection().connection.dbapi_connection


def _inline() -> bool:
    return current_app.config.get("CDR_ARCHIVE_INLINE", current_app.testing)


def _month(text: str):
    try:
        return services.parse_month(text)
    except services.RetentionError:
        abort(404)


def _running() -> CdrArchiveTask | None:
    if services.fail_abandoned_tasks(_connection()):
        db.session.commit()
    return db.session.scalar(db.select(CdrArchiveTask).where(CdrArchiveTask.status.in_(("queued", "running")))
                             .order_by(CdrArchiveTask.id.desc()).limit(1))


@bp.route("/cdr-partitions")
def cdr_partitions():
    directory = archive_dir()
    listing = services.partitions(_connection(), directory)
    tasks = db.session.scalars(db.select(CdrArchiveTask).order_by(CdrArchiveTask.id.desc()).limit(10)).all()
    retention = CdrRetentionForm(months=Settings.get().cdr_retention_months)
    return render_template("admin/cdr_partitions.html", partitions=listing, tasks=tasks, running=_running(),
                           archive_form=CdrArchiveForm(), retention_form=retention, directory=directory,
                           size=services.size_text)


def _start(month, action: str, accept_review: bool = False):
    if _running() is not None:
        flash("Another archive or restore is running: wait until it is done.", "warning")
        return redirect(url_for("admin.cdr_partitions"))
    task_id = services.create_task(_connection(), month, action, current_user.email, accept_review)
    audit.record(action, "cdr_month", f"{month:%Y-%m}", task=task_id, accept_review=accept_review)
    directory = archive_dir()
    if _inline():
        services.run_task(_connection(), task_id, directory, billing_tz=billing_timezone())
        db.session.commit()
    else:
        db.session.commit()
        services.start_background(current_app.config["DATABASE_URL"], task_id, directory, billing_timezone())
    return redirect(url_for("admin.cdr_partitions", task=task_id))


@bp.route("/cdr-partitions/<month>/archive", methods=["POST"])
def cdr_partition_archive(month: str):
    form = CdrArchiveForm()
    if not form.validate_on_submit():
        abort(400)
    return _start(_month(month), "archive", bool(form.accept_review.data))


@bp.route("/cdr-partitions/<month>/restore", methods=["POST"])
def cdr_partition_restore(month: str):
    form = CdrArchiveForm()   # the CSRF token
    if not form.validate_on_submit():
        abort(400)
    return _start(_month(month), "restore")


@bp.route("/cdr-partitions/tasks/<int:task_id>")
def cdr_archive_task_status(task_id: int):
    task = db.session.get(CdrArchiveTask, task_id)
    if task is None:
        abort(404)
    db.session.refresh(task)
    phases = PHASES[task.action]
    step = phases.index(task.phase) if task.phase in phases else (len(phases) - 1 if task.finished_at else 0)
    return jsonify(status=task.status, phase=task.phase, processed_lines=step, total_lines=len(phases) - 1,
                   percent=int(100 * step / (len(phases) - 1)), done=task.status in ("done", "refused", "failed"))


@bp.route("/cdr-partitions/retention", methods=["POST"])
def cdr_retention():
    form = CdrRetentionForm()
    if not form.validate_on_submit():
        flash("Months of CDRs kept: " + "; ".join(form.months.errors or ["invalid"]), "danger")
        return redirect(url_for("admin.cdr_partitions"))
    settings = Settings.get()
    before = settings.cdr_retention_months
    settings.cdr_retention_months = form.months.data
    audit.record("update", "settings", None, cdr_retention_months=[before, form.months.data])
    db.session.commit()
    flash("Every month is kept." if form.months.data == 0 else
          f"CDRs older than {form.months.data} full months will be archived by the monthly cdr_archive job.", "success")
    return redirect(url_for("admin.cdr_partitions"))
