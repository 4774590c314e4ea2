"""Rate deck import (upload, map columns, preview, run with progress) and rate export."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from . import bp
from .. import audit, csvstream
from ..choices import options as select_options   # `options` is the import's own dict here
from ..dbapi import connection as _dbapi_connection
from ..extensions import db
from ..localtime import local_tz
from ..models import Provider, RateImport, Ratecard, Weight
from ..rateimport import services
from .manage.common import get_or_404
from ._forms import ExportForm, MappingForm, RunForm, UploadForm, add_mapping_fields


def _targets() -> list[tuple[str, str]]:
    cards = [(f"ratecard:{r.id}", f"Ratecard {r.name} (sell, {r.currency})")
             for r in db.session.scalars(db.select(Ratecard).order_by(Ratecard.name))]
    providers = [(f"provider:{p.id}", f"Provider {p.name} (cost, {p.currency})")
                 for p in db.session.scalars(db.select(Provider).order_by(Provider.name))]
    return cards + providers


def _parse_target(value: str) -> tuple[str, int]:
    kind, _, ident = (value or "").partition(":")
    if kind not in ("ratecard", "provider") or not ident.isdigit():
        abort(400, "unknown import target")
    model = Ratecard if kind == "ratecard" else Provider
    if db.session.get(model, int(ident)) is None:
        abort(404)
    return kind, int(ident)


@bp.route("/rate-imports")
def rate_imports():
    export_form = ExportForm(request.args)
    export_form.source.choices = select_options(_targets())
    if request.args.get("source"):
        if export_form.validate():
            kind, owner_id = _parse_target(export_form.source.data)
            return redirect(url_for("admin.rate_export", kind=kind, owner_id=owner_id))
        flash("Choose a ratecard or a provider to export.", "warning")
    jobs = db.session.scalars(db.select(RateImport).order_by(RateImport.id.desc()).limit(50)).all()
    return render_template("admin/rate_imports.html", jobs=jobs, export_form=export_form)


@bp.route("/rate-imports/new", methods=["GET", "POST"])
def rate_import_new():
    form = UploadForm()
    form.target.choices = select_options(_targets())
    if request.method == "GET" and request.args.get("target"):
        form.target.data = request.args["target"]
    if not form.target.choices:
        flash("Create a ratecard or a provider first: a deck is imported into one of them.", "warning")
    if form.validate_on_submit():
        kind, owner_id = _parse_target(form.target.data)
        path = services.store_upload(form.deck.data.stream, current_app.instance_path)
        delimiter = form.delimiter.data
        if delimiter == "auto":
            delimiter = services.sniff_delimiter(path)
        job = RateImport(target=kind, ratecard_id=owner_id if kind == "ratecard" else None,
                         provider_id=owner_id if kind == "provider" else None,
                         filename=(form.deck.data.filename or "deck.csv")[:200], stored_path=path,
                         options={"delimiter": delimiter, "has_header": form.has_header.data},
                         created_by=current_user.email)
        db.session.add(job)
        db.session.flush()
        audit.record("upload", "rate_import", job.id, filename=job.filename, target=form.target.data)
        db.session.commit()
        return redirect(url_for("admin.rate_import_mapping", job_id=job.id))
    return render_template("admin/rate_import_new.html", form=form)


@bp.route("/rate-imports/<int:job_id>/mapping", methods=["GET", "POST"])
def rate_import_mapping(job_id: int):
    job = get_or_404(RateImport, job_id)
    if job.status in ("running", "done"):
        return redirect(url_for("admin.rate_import", job_id=job.id))
    options = dict(job.options)
    try:
        head = services.head_rows(job.stored_path, options.get("delimiter", ","))
    except (services.RateImportError, OSError) as e:
        flash(f"The file cannot be read: {e}. Upload it again.", "danger")
        return redirect(url_for("admin.rate_import_new"))
    if not head:
        flash("The file is empty. Upload a CSV with one rate per line.", "danger")
        return redirect(url_for("admin.rate_import_new"))
    width = max(len(r) for r in head)
    header = head[0] if options.get("has_header") else [f"column {i + 1}" for i in range(width)]
    columns = [(str(i), f"{i + 1}: {header[i] if i < len(header) else ''}".strip()) for i in range(width)]
    form = add_mapping_fields(MappingForm, columns)()
    form.weight_id.choices = select_options([("", "— do not add destinations —")] + [
        (str(w.id), w.name) for w in db.session.scalars(db.select(Weight).order_by(Weight.name))])
    if request.method == "GET":
        guessed = options.get("mapping") or (services.guess_mapping(header) if options.get("has_header") else
                                             {"prefix": 0, "rate": 1})
        for name in services.FIELD_NAMES:
            getattr(form, f"map_{name}").data = str(guessed[name]) if name in guessed else ""
        effective = job.effective_from or datetime.now(timezone.utc).replace(second=0, microsecond=0)
        form.effective_from.data = effective.astimezone(local_tz()).replace(tzinfo=None)
        form.default_increment.data = options.get("default_increment", "60/60")
        form.weight_id.data = str(options.get("weight_id") or "")
        form.mode.data = options.get("mode", "update")
    if form.validate_on_submit():
        mapping = {name: int(getattr(form, f"map_{name}").data) for name in services.FIELD_NAMES
                   if getattr(form, f"map_{name}").data != ""}
        import_options = services.ImportOptions(
            mapping=mapping, delimiter=options.get("delimiter", ","), has_header=bool(options.get("has_header")),
            default_increment=form.default_increment.data,
            weight_id=int(form.weight_id.data) if form.weight_id.data else None, mode=form.mode.data)
        effective = form.effective_from.data.replace(tzinfo=local_tz())
        job.options = import_options.to_json()
        job.effective_from = effective
        try:
            import_options.check()
            result = services.preview(_dbapi_connection(), job.target, job.owner_id, job.stored_path,
                                      import_options, effective)
        except services.RateImportError as e:
            job.status, job.errors, job.summary, job.phase = "invalid", e.errors, {}, str(e)
            db.session.commit()
            if not e.errors:
                form.form_errors.append(str(e))
                return render_template("admin/rate_import_mapping.html", job=job, form=form, head=head)
            return redirect(url_for("admin.rate_import", job_id=job.id))
        job.status, job.errors, job.phase = "previewed", [], None
        job.summary = services.summary_of(result)
        job.total_lines = result.rows
        db.session.commit()
        return redirect(url_for("admin.rate_import", job_id=job.id))
    return render_template("admin/rate_import_mapping.html", job=job, form=form, head=head)


@bp.route("/rate-imports/<int:job_id>")
def rate_import(job_id: int):
    job = get_or_404(RateImport, job_id)
    return render_template("admin/rate_import.html", job=job, field_labels={n: label for n, label, _ in services.FIELDS},
                           run_form=RunForm(formdata=None))


@bp.route("/rate-imports/<int:job_id>/status")
def rate_import_status(job_id: int):
    job = get_or_404(RateImport, job_id)
    db.session.refresh(job)
    total = job.total_lines or 0
    percent = min(100, int(100 * job.processed_lines / total)) if total else None
    return jsonify(status=job.status, phase=job.phase, processed_lines=job.processed_lines,
                   total_lines=job.total_lines, percent=percent, done=job.status in ("done", "failed", "invalid"))


@bp.route("/rate-imports/<int:job_id>/run", methods=["POST"])
def rate_import_run(job_id: int):
    job = get_or_404(RateImport, job_id)
    if job.status != "previewed":
        flash("Preview the deck first; only a deck without errors can be imported.", "warning")
        return redirect(url_for("admin.rate_import", job_id=job.id))
    form = RunForm()
    if not form.validate_on_submit():
        abort(400)
    removed = (job.summary or {}).get("counts", {}).get("removed", 0)
    confirmed = None
    if job.options.get("mode") == "replace" and removed:
        typed = form.confirm_removed.data or ""
        if typed != str(removed):
            flash(f"Nothing was imported: type {removed} (the number of prefixes this replace closes) to confirm, "
                  "or change the mode to update.", "danger")
            return redirect(url_for("admin.rate_import", job_id=job.id))
        confirmed = removed
    # The confirmed count travels with the job: the import refuses if it has changed since.
    job.options = {**job.options, "confirm_removed": confirmed}
    audit.record("import", "rate_import", job.id, target=job.target, owner_id=job.owner_id,
                 effective_from=job.effective_from, filename=job.filename, mode=job.options.get("mode", "update"),
                 confirmed_removed=confirmed)
    if current_app.config.get("RATE_IMPORT_INLINE", current_app.testing):
        db.session.flush()                       # the job's options, read by run_job_in on the same connection
        services.run_job_in(_dbapi_connection(), job.id)
        db.session.commit()
    else:
        job.status, job.phase, job.processed_lines = "running", "queued", 0
        db.session.commit()
        services.start_background(current_app.config["DATABASE_URL"], job.id)
    return redirect(url_for("admin.rate_import", job_id=job.id))


@bp.route("/rate-exports/<kind>/<int:owner_id>.csv")
def rate_export(kind: str, owner_id: int):
    if kind not in ("ratecard", "provider"):
        abort(404)
    owner = db.session.get(Ratecard if kind == "ratecard" else Provider, owner_id)
    if owner is None:
        abort(404)
    return csvstream.export_response(f"{kind}-{owner.name}-rates-{datetime.now(timezone.utc):%Y%m%d}.csv",
                                     services.export(kind, owner_id))
