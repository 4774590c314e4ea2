"""Helpers shared by the self-care views (not a feature module: no routes)."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from flask import Response, abort, current_app, flash, redirect, request, stream_with_context

from ..extensions import db

from . import _services as services

_NUMERIC = re.compile(r"^[+-]?[0-9][0-9.]*$")


def page_arg() -> int:
    """The 1-based page number from ?page=; nonsense answers 400, not a stack trace."""
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        abort(400, description="The page number must be a whole number from 1.")
    return int(raw)


def per_page() -> int:
    return current_app.config.get("PAGE_SIZE", 50)


def field_error(form, exc: services.SelfcareError) -> None:
    """Show a service's refusal beside the field it is about (or above the form)."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [str(exc)]
    else:
        form.form_errors.append(str(exc))


def submit(form, action, message: str, target: str):
    """The POST half of a form view: validate, run the service, flash and redirect.
    A refusal of the service goes beside its field (None: render the form again);
    a row that is not the customer's is a 404."""
    if not form.validate_on_submit():
        return None
    try:
        action()
    except services.NotFound:
        abort(404)
    except services.SelfcareError as exc:
        db.session.rollback()
        field_error(form, exc)
        return None
    flash(message, "success")
    return redirect(target)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # Spreadsheets run cells starting with = + - @ as formulas (caller ids are chosen by
    # callers): quote them, but keep numbers such as +33123456 readable as numbers.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMERIC.match(text):
        return "'" + text
    return text


def csv_response(filename: str, header: list[str], batches) -> Response:
    """A streamed CSV download: one chunk per batch of rows, so memory stays constant."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        yield buffer.getvalue()
        for batch in batches:
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(v) for v in row] for row in batch)
            yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
