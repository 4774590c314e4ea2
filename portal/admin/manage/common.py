"""Helpers shared by the management pages: query arguments, search, sorting, pagination,
and the save / delete / enable-disable steps every page repeats."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request
from sqlalchemy import func, or_, select

from ... import paging
from ...dbapi import like_escape
from ...extensions import db
from . import services
from .forms import options


def arg_int(name: str, default: int | None = None) -> int | None:
    """An integer query argument; anything else counts as absent."""
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() else default


def arg_text(name: str) -> str:
    return request.args.get(name, "").strip()[:100]


MAX_PAGE = 1_000_000


def page_number() -> int:
    """?page= as a whole number from 1 to MAX_PAGE (missing: 1); anything else is a 400,
    not an offset PostgreSQL cannot hold."""
    raw = request.args.get("page", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, description=f"The page number must be a whole number from 1 to {MAX_PAGE:,}.")
    return int(raw)


def paginate(stmt, per_page: int | None = None) -> paging.Page:
    """Run `stmt` (a select of ORM entities or rows) for the page named by ?page=
    (page_number: anything but a whole number from 1 to MAX_PAGE is a 400)."""
    return paging.paginate(stmt, page_number(), per_page or current_app.config.get("PAGE_SIZE", 50))


def sorted_by(stmt, columns: dict, default: str):
    """Order `stmt` by ?sort=<key> or ?sort=-<key> (descending); unknown keys use `default`."""
    key = request.args.get("sort", default)
    descending = key.startswith("-")
    column = columns.get(key.lstrip("-"))
    if column is None:
        descending = default.startswith("-")
        column = columns[default.lstrip("-")]
    return stmt.order_by(column.desc() if descending else column.asc())


def searched(stmt, text: str, *columns):
    """Case-insensitive substring search over `columns` (bound parameters, never pasted SQL)."""
    if not text:
        return stmt
    pattern = "%" + like_escape(text) + "%"
    return stmt.where(or_(*(c.ilike(pattern, escape="\\") for c in columns)))


def prefix_searched(stmt, text: str, column):
    """Rows whose prefix starts with the digits typed, or is a prefix of them (both are useful)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return stmt
    return stmt.where(or_(column.startswith(digits), func.starts_with(digits, column)))


def choices_of(model, label=lambda obj: obj.name):
    """Select choices of every row of `model`, by name."""
    return options((obj.id, label(obj)) for obj in db.session.scalars(select(model).order_by(model.name)))


def get_or_404(model, ident):
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj


def render_form_page(form, title: str, cancel_url: str | None = None, breadcrumbs=(), **context):
    """The generic create/edit page (templates/admin/manage/form.html)."""
    status = 400 if form.errors else 200
    return render_template("admin/manage/form.html", form=form, title=title, cancel_url=cancel_url,
                           breadcrumbs=list(breadcrumbs), **context), status


def saved(obj, data: dict, entity: str, label: str, next_url: str):
    """Save `data` into `obj` (audited) and redirect; None after a flashed refusal."""
    try:
        services.save(obj, data, entity)
    except services.AdminError as exc:
        flash(str(exc), "danger")
        return None
    flash(f"{label} saved.", "success")
    return redirect(next_url)


def deleted(model, obj, entity: str, label: str, next_url: str, failure_url: str | None = None):
    """Delete `obj` (audited) and redirect; a refusal of the database is flashed."""
    try:
        services.delete(model, obj, entity, label)
    except services.AdminError as exc:
        flash(str(exc), "danger")
        return redirect(failure_url or next_url)
    flash(f"{label} deleted.", "success")
    return redirect(next_url)


def toggled(obj, entity: str, label: str, next_url: str, attribute: str = "enabled", when_off: str = ""):
    """Flip `obj.<attribute>` (audited), say so, and redirect."""
    services.set_enabled(obj, entity, not getattr(obj, attribute), attribute)
    flash(f"{label} {'enabled' if getattr(obj, attribute) else 'disabled' + when_off}.", "success")
    return redirect(next_url)
