"""Back office: scheduled jobs (status, history, run now) and the mail outbox."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..jobs import JOBS, JobError, last_runs, run_job
from ..jobs import definitions  # noqa: F401  (registers the jobs)
from ..mail import diagnose
from ..mail.forms import TestMailForm
from ..mail.outbox import counts, retry
from ..models import JobRun, MailMessage
from . import bp
from .manage.common import paginate, searched

RUN_STATUSES = [(s, s) for s in ("running", "ok", "error", "skipped")]
MAIL_STATUSES = [(s, s) for s in ("pending", "sent", "failed")]


@bp.route("/jobs")
def jobs():
    job = request.args.get("job", "")
    status = request.args.get("status", "")
    query = searched(select(JobRun), request.args.get("q", "").strip(), JobRun.result, JobRun.error)
    if job in JOBS:
        query = query.where(JobRun.job == job)
    if status in dict(RUN_STATUSES):
        query = query.where(JobRun.status == status)
    listing = paginate(query.order_by(JobRun.id.desc()))
    return render_template("admin/jobs/jobs.html", jobs=list(JOBS.values()), last=last_runs(), **vars(listing),
                           job=job, job_options=[(name, name) for name in JOBS], status=status,
                           statuses=RUN_STATUSES, scheduler=current_app.extensions.get("scheduler"),
                           mail_counts=counts())


@bp.route("/jobs/<name>/run", methods=["POST"])
def job_run(name: str):
    if name not in JOBS:
        abort(404)
    try:
        run = run_job(name, trigger="admin")
    except JobError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("admin.jobs"))
    audit.record("run", "job", run.id, job=name, status=run.status)
    db.session.commit()
    if run.status == "ok":
        flash(f"{name}: {run.result}", "success")
    elif run.status == "skipped":
        flash(f"{name} is running in another process right now; nothing was done.", "warning")
    else:
        flash(f"{name} failed: {(run.error or '').splitlines()[-1] if run.error else ''}", "danger")
    return redirect(url_for("admin.jobs", job=name))


@bp.route("/jobs/runs/<int:run_id>")
def job_run_detail(run_id: int):
    run = db.session.get(JobRun, run_id)
    if run is None:
        abort(404)
    return render_template("admin/jobs/run.html", run=run, job=JOBS.get(run.job))


@bp.route("/mail")
def mail():
    status = request.args.get("status", "")
    q = request.args.get("q", "").strip()
    query = searched(select(MailMessage), q, MailMessage.to_addr, MailMessage.subject)
    if status in dict(MAIL_STATUSES):
        query = query.where(MailMessage.status == status)
    listing = paginate(query.order_by(MailMessage.id.desc()))
    form = TestMailForm(formdata=None, to_addr=current_user.email)
    return _mail_page(listing, status, q, form)


def _mail_page(listing, status, q, form, code=200):
    return render_template("admin/jobs/mail.html", **vars(listing), status=status, q=q, statuses=MAIL_STATUSES,
                           mail_counts=counts(), smtp=diagnose.settings(current_app.config),
                           explain=lambda error: diagnose.explain(error, current_app.config), test_form=form), code


@bp.route("/mail/test", methods=["POST"])
def mail_test():
    """Send one message now with the SMTP settings and say what happened, in words."""
    form = TestMailForm()
    if not form.validate_on_submit():
        listing = paginate(select(MailMessage).order_by(MailMessage.id.desc()))
        return _mail_page(listing, "", "", form, 400)
    try:
        used = diagnose.send_test(current_app.config, form.to_addr.data)
    except Exception as exc:  # noqa: BLE001 - every failure is shown to the admin, in words
        raw = f"{type(exc).__name__}: {exc}"
        audit.record("test", "mail", None, to=form.to_addr.data, error=raw[:300])
        db.session.commit()
        flash(f"The test e-mail to {form.to_addr.data} was not sent. {diagnose.explain(raw, current_app.config)} "
              f"(Technical detail: {raw})", "danger")
    else:
        audit.record("test", "mail", None, to=form.to_addr.data)
        db.session.commit()
        flash(f"Test e-mail sent to {form.to_addr.data} through {used}. Check that it arrived.", "success")
    return redirect(url_for("admin.mail"))


@bp.route("/mail/<int:message_id>")
def mail_detail(message_id: int):
    message = db.session.get(MailMessage, message_id)
    if message is None:
        abort(404)
    return render_template("admin/jobs/mail_detail.html", message=message,
                           explanation=diagnose.explain(message.last_error, current_app.config))


@bp.route("/mail/<int:message_id>/retry", methods=["POST"])
def mail_retry(message_id: int):
    if db.session.get(MailMessage, message_id) is None:
        abort(404)
    if retry(message_id):
        audit.record("retry", "mail", message_id)
        db.session.commit()
        flash("The message will be sent at the next delivery run (every minute).", "success")
    else:
        flash("This message was already sent.", "warning")
    return redirect(url_for("admin.mail_detail", message_id=message_id))
