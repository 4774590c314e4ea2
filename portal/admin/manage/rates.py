"""Rate rows are the same on both sides (ratecards sell, providers buy): one list query,
one set of pages (new / edit / delete) and one template fragment serve both."""
from __future__ import annotations

from flask import render_template, url_for
from sqlalchemy import and_, func, or_, select

from .. import bp
from .common import arg_text, deleted, get_or_404, paginate, prefix_searched, saved, sorted_by
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
    return render_template("admin/manage/form.html", form=form, title=title, cancel_url=back_url,
                           breadcrumbs=breadcrumbs, intro=f"Amounts in {currency}, per minute."), \
        400 if form.errors else 200


def add_rate_routes(rate_model, owner_model, *, owner_field: str, entity: str, noun: str, new_rule: str,
                    rule_prefix: str, endpoint_prefix: str, list_view: str, list_label: str) -> None:
    """Add the new / edit / delete pages of one side's rates to the blueprint.

    Endpoints: <prefix>rate_new, <prefix>rate_edit, <prefix>rate_delete; the owner's page is
    the view named like the owner's table in the singular (admin.ratecard, admin.provider).
    """
    owner_attr = owner_field.removesuffix("_id")
    owner_view = f"admin.{owner_attr}"

    def owner_url(owner_id: int) -> str:
        return url_for(owner_view, **{owner_field: owner_id})

    def page(owner, rate, title: str):
        back = owner_url(owner.id)
        return rate_form_page(rate, owner_field, owner.id, entity, title, back,
                              [(list_label, url_for(list_view)), (owner.name, back)], owner.currency)

    def new(**view_args):
        owner = get_or_404(owner_model, view_args[owner_field])
        return page(owner, rate_model(), f"New {noun} of {owner.name}")

    def edit(rate_id: int):
        rate = get_or_404(rate_model, rate_id)
        owner = getattr(rate, owner_attr)
        return page(owner, rate, f"Edit {noun} {rate.prefix} of {owner.name}")

    def delete(rate_id: int):
        rate = get_or_404(rate_model, rate_id)
        return deleted(rate_model, rate, entity, f"Rate for prefix {rate.prefix}", owner_url(getattr(rate, owner_field)))

    bp.add_url_rule(new_rule, f"{endpoint_prefix}rate_new", new, methods=["GET", "POST"])
    bp.add_url_rule(f"{rule_prefix}/<int:rate_id>/edit", f"{endpoint_prefix}rate_edit", edit, methods=["GET", "POST"])
    bp.add_url_rule(f"{rule_prefix}/<int:rate_id>/delete", f"{endpoint_prefix}rate_delete", delete, methods=["POST"])
