"""Rate rows are the same on both sides (ratecards sell, providers buy): one list query,
one set of pages (new / change / end / delete / history) and one template fragment
serve both. A change never overwrites a rate that may have priced calls: it is a new
version from an effective date (portal/rates/services.py)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import and_, func, or_, select

from ...extensions import db
from ...formatting import moment_text
from ...rateversions import services as rate_versions
from .. import bp
from . import services
from .common import arg_text, get_or_404, paginate, prefix_searched, render_form_page, saved, sorted_by
from .forms import RateChangeForm, RateEndForm, RateForm

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
    """Add one rate row; redirects to `back_url` once saved."""
    form = RateForm()
    if form.validate_on_submit():
        data = form.rate_data()
        data[owner_field] = owner_id
        response = saved(rate, data, entity, f"Rate for prefix {data['prefix']}", back_url)
        if response:
            return response
    return render_template("admin/manage/form.html", form=form, title=title, cancel_url=back_url,
                           breadcrumbs=breadcrumbs, intro=f"Amounts in {currency}, per minute."), \
        400 if form.errors else 200


def rate_change_page(rate, title: str, back_url: str, history_url: str, breadcrumbs, currency: str):
    """A new version of a rate from an effective date (portal/rates/services.py)."""
    form = RateChangeForm(obj=rate)
    if not form.is_submitted():
        form.increment.data = (rate.increment_first, rate.increment_next)
        form.effective_from.data = None
    if form.validate_on_submit():
        try:
            changed = rate_versions.change(rate, form.values(), form.effective_from.data, form.valid_to.data,
                                           actor=services.audit_actor())
            db.session.commit()
        except rate_versions.RateChangeError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
        else:
            if changed.new is None:
                flash(f"Scheduled rate for prefix {rate.prefix} changed (it had not started).", "success")
            else:
                flash(f"Rate for prefix {rate.prefix}: new version from {moment_text(changed.effective)}; "
                      "the previous one ends then.", "success")
            return redirect(history_url)
    current = "open" if rate.valid_to is None else f"until {moment_text(rate.valid_to)}"
    since = "always" if rate.valid_from is None else moment_text(rate.valid_from)
    return render_template("admin/manage/form.html", form=form, title=title, cancel_url=back_url,
                           breadcrumbs=breadcrumbs, links=[("History of this prefix", history_url)],
                           intro=f"Prefix {rate.prefix}: {rate.rate.normalize():f} {currency} per minute, valid from "
                                 f"{since}, {current}. Saving keeps it for the calls it priced and starts a new "
                                 "version at the effective date."), 400 if form.errors else 200


def add_rate_routes(rate_model, owner_model, *, owner_field: str, entity: str, noun: str, new_rule: str,
                    rule_prefix: str, endpoint_prefix: str, list_view: str, list_label: str,
                    history_rule: str) -> None:
    """Add the new / change / end / delete / history pages of one side's rates to the blueprint.

    Endpoints: <prefix>rate_new, <prefix>rate_edit (change: a new version), <prefix>rate_end,
    <prefix>rate_delete (scheduled rates only), <prefix>rate_history; the owner's page is
    the view named like the owner's table in the singular (admin.ratecard, admin.provider).
    """
    owner_attr = owner_field.removesuffix("_id")
    owner_view = f"admin.{owner_attr}"
    history_view = f"admin.{endpoint_prefix}rate_history"

    def owner_url(owner_id: int) -> str:
        return url_for(owner_view, **{owner_field: owner_id})

    def history_url(rate) -> str:
        return url_for(history_view, **{owner_field: getattr(rate, owner_field)}, prefix=rate.prefix)

    def crumbs(owner):
        return [(list_label, url_for(list_view)), (owner.name, owner_url(owner.id))]

    def new(**view_args):
        owner = get_or_404(owner_model, view_args[owner_field])
        return rate_form_page(rate_model(), owner_field, owner.id, entity, f"New {noun} of {owner.name}",
                              owner_url(owner.id), crumbs(owner), owner.currency)

    def edit(rate_id: int):
        rate = get_or_404(rate_model, rate_id)
        owner = getattr(rate, owner_attr)
        return rate_change_page(rate, f"Change {noun} {rate.prefix} of {owner.name}", owner_url(owner.id),
                                history_url(rate), crumbs(owner), owner.currency)

    def end(rate_id: int):
        rate = get_or_404(rate_model, rate_id)
        owner = getattr(rate, owner_attr)
        form = RateEndForm()
        if form.validate_on_submit():
            try:
                when = rate_versions.end(rate, form.at.data, actor=services.audit_actor())
                db.session.commit()
            except rate_versions.RateChangeError as exc:
                db.session.rollback()
                form.form_errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
            else:
                flash(f"Rate for prefix {rate.prefix} ends at {moment_text(when)}.", "success")
                return redirect(history_url(rate))
        return render_form_page(form, f"End {noun} {rate.prefix} of {owner.name}", owner_url(owner.id),
                                crumbs(owner), links=[("History of this prefix", history_url(rate))],
                                intro="The rate is kept for the calls it priced; it stops applying at the end.")

    def delete(rate_id: int):
        rate = get_or_404(rate_model, rate_id)
        back = owner_url(getattr(rate, owner_field))
        try:
            rate_versions.delete_scheduled(rate, actor=services.audit_actor())
            db.session.commit()
        except rate_versions.RateChangeError as exc:
            db.session.rollback()
            flash(f"Rate for prefix {rate.prefix} was not deleted: {exc}.", "danger")
        else:
            flash(f"Scheduled rate for prefix {rate.prefix} deleted.", "success")
        return redirect(back)

    def history(prefix: str, **view_args):
        owner = get_or_404(owner_model, view_args[owner_field])
        versions = rate_versions.history(rate_model, owner.id, prefix)
        if not versions:
            abort(404)
        return render_template("admin/rate_history.html", owner=owner, prefix=prefix, versions=versions,
                               noun=noun, breadcrumbs=crumbs(owner), currency=owner.currency,
                               edit_endpoint=f"admin.{endpoint_prefix}rate_edit",
                               end_endpoint=f"admin.{endpoint_prefix}rate_end",
                               delete_endpoint=f"admin.{endpoint_prefix}rate_delete")

    bp.add_url_rule(new_rule, f"{endpoint_prefix}rate_new", new, methods=["GET", "POST"])
    bp.add_url_rule(f"{rule_prefix}/<int:rate_id>/edit", f"{endpoint_prefix}rate_edit", edit, methods=["GET", "POST"])
    bp.add_url_rule(f"{rule_prefix}/<int:rate_id>/end", f"{endpoint_prefix}rate_end", end, methods=["GET", "POST"])
    bp.add_url_rule(f"{rule_prefix}/<int:rate_id>/delete", f"{endpoint_prefix}rate_delete", delete, methods=["POST"])
    bp.add_url_rule(history_rule, f"{endpoint_prefix}rate_history", history)
