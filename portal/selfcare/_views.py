"""Helpers shared by the self-care views (not a feature module: no routes)."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request

from ..errors import NotFound, Refused
from ..extensions import db


def page_arg() -> int:
    """The 1-based page number from ?page=; nonsense answers 400, not a stack trace."""
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        abort(400, description="The page number must be a whole number from 1.")
    return int(raw)


def per_page() -> int:
    return current_app.config.get("PAGE_SIZE", 50)


def field_error(form, exc: Refused) -> None:
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
    except NotFound:
        abort(404)
    except Refused as exc:
        db.session.rollback()
        field_error(form, exc)
        return None
    flash(message, "success")
    return redirect(target)
