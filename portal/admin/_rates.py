"""Rate rows are the same on both sides (ratecards sell, providers buy): one list query,
one form page, one template fragment for both. Not a feature module (leading underscore)."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import and_, func, or_, select

from ._common import arg_text, paginate, prefix_searched, saved, sorted_by
from .forms import RateForm

STATES = [("current", "Valid now"), ("future", "Starting later"), ("expired", "Expired"), ("blocked", "Blocked")]


def rates_page(model, owner_column, owner_id: int):
    """One page of an owner's rates, filtered by ?q= (prefix digits) and ?state=, sorted by ?sort=."""
    now = func.now()
    stmt = prefix_searched(select(model).where(owner_column == owner_id), arg_text("q"), model.prefix)
    state = arg_text("state")
    started = or_(model.valid_from.is_(None), model.valid_from <= now)
    not_ended = or_(model.valid_to.is_(None), model.valid_to > now)
    if state == "current":
        stmt = stmt.where(and_(started, not_ended, model.blocked.is_(False)))
    elif state == "future":
        stmt = stmt.where(model.valid_from > now)
    elif state == "expired":
        stmt = stmt.where(model.valid_to <= now)
    elif state == "blocked":
        stmt = stmt.where(model.blocked.is_(True))
    stmt = sorted_by(stmt, {"prefix": model.prefix, "rate": model.rate, "valid_from": model.valid_from}, "prefix")
    return paginate(stmt.order_by(model.valid_from.asc().nullsfirst()))


def rate_form_page(rate, owner_field: str, owner_id: int, entity: str, title: str, back_url: str, breadcrumbs,
                   currency: str):
    """Create or edit one rate row; redirects to `back_url` once saved."""
    form = RateForm(obj=rate if rate.id is not None else None)   # a new row has no values yet: use the defaults
    if not form.is_submitted() and rate.id is not None:
        form.increment.data = (rate.increment_first, rate.increment_next)
    if form.validate_on_submit():
        data = form.rate_data()
        data[owner_field] = owner_id
        response = saved(rate, data, entity, f"Rate for prefix {data['prefix']}", back_url)
        if response:
            return response
    return render_template("admin/form.html", form=form, title=title, cancel_url=back_url,
                           breadcrumbs=breadcrumbs, intro=f"Amounts in {currency}, per minute."), \
        400 if form.errors else 200
