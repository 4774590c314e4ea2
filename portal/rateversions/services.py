"""Rate versions: a rate (sell side: a ratecard's; cost side: a provider's) is never
changed in place once it may have priced a call. A change is a new version from an
effective moment (now or later): the old row ends there and a new row starts there, so
the history of every prefix stays visible and re-rating a past period finds the rates
that applied then (docs/admin.md, "Rate changes").

Rows that have not started yet (scheduled) never priced a call: they are edited in
place (audited with their old values) or deleted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..extensions import db
from ..formatting import moment_text
from ..models import AuditLog, ProviderRate, SellRate

VALUE_FIELDS = ("rate", "connect_fee", "min_duration", "increment_first", "increment_next", "blocked")
# A time typed in the form has minutes only: "now" typed a few seconds ago is not the past.
PAST_TOLERANCE = timedelta(minutes=1)


class RateChangeError(ValueError):
    """A change that cannot be made; the message says why and what to do instead."""


@dataclass
class Side:
    """What differs between ratecard rates and provider rates."""
    model: type
    owner_field: str          # ratecard_id | provider_id
    entity: str               # audit entity: rate | provider_rate

    @classmethod
    def of(cls, row) -> "Side":
        return SIDES[type(row)]


SIDES = {SellRate: Side(SellRate, "ratecard_id", "rate"), ProviderRate: Side(ProviderRate, "provider_id", "provider_rate")}


def now() -> datetime:
    return db.session.scalar(select(func.now()))


def started(row, moment: datetime | None = None) -> bool:
    """True when the row may already have priced a call."""
    return row.valid_from is None or row.valid_from <= (moment or now())


def _effective(when: datetime | None, moment: datetime) -> datetime:
    if when is None:
        return moment
    if when < moment - PAST_TOLERANCE:
        raise RateChangeError(
            "the change must take effect now or later: calls already billed keep the rate they were billed at "
            "(to correct a past period, change the rate from now and re-rate that period)")
    return max(when, moment)


@dataclass
class Changed:
    old: object
    new: object | None          # None when a scheduled row was edited in place
    effective: datetime


def change(row, values: dict, effective_from: datetime | None = None, valid_to: datetime | None = ...,
           actor: str | None = None) -> Changed:
    """A new version of `row` with `values` (rate, connect_fee, min_duration,
    increment_first, increment_next, blocked) from `effective_from` (default now).

    `valid_to`: the new version's end; by default the old row's end (the new version
    replaces the rest of it). The caller commits."""
    side = Side.of(row)
    db.session.refresh(row, with_for_update=True)
    moment = now()
    effective = _effective(effective_from, moment)
    end = row.valid_to if valid_to is ... else valid_to
    if end is not None and end <= effective:
        raise RateChangeError(f"the new version would end ({moment_text(end)}) before it starts "
                              f"({moment_text(effective)})")
    if all(getattr(row, f) == values[f] for f in VALUE_FIELDS) and end == row.valid_to:
        raise RateChangeError("nothing changed: give a new rate, fee, increment or block")
    if row.valid_to is not None and row.valid_to <= effective:
        raise RateChangeError(f"this rate ends at {moment_text(row.valid_to)}, before the change would start: "
                              "add a new rate instead")
    before = {f: getattr(row, f) for f in (*VALUE_FIELDS, "valid_from", "valid_to")}
    scheduled = not started(row, moment) and (effective_from is None or effective <= row.valid_from)
    if scheduled or (row.valid_from is not None and row.valid_from >= effective):
        # scheduled, never applied: edit it in place (from its own start, or earlier)
        for field, value in values.items():
            setattr(row, field, value)
        if effective_from is not None:
            row.valid_from = effective
        row.valid_to = end
        _flush(side)
        audit.record("update", side.entity, row.id, actor=actor, scheduled=True,
                     **{k: [before[k], getattr(row, k)] for k in before if before[k] != getattr(row, k)})
        return Changed(row, None, row.valid_from)
    new = side.model(**{side.owner_field: getattr(row, side.owner_field), "prefix": row.prefix, **values,
                        "valid_from": effective, "valid_to": end})
    row.valid_to = effective
    db.session.add(new)
    _flush(side)
    audit.record("new_version", side.entity, new.id, actor=actor, prefix=row.prefix, replaces=row.id,
                 effective_from=effective, **{k: [before[k], getattr(new, k)] for k in VALUE_FIELDS
                                               if before[k] != getattr(new, k)})
    return Changed(row, new, effective)


def end(row, at: datetime | None = None, actor: str | None = None) -> datetime:
    """End a rate at `at` (now or later); calls after it find the next rate of a shorter
    prefix, or none. Returns the end."""
    side = Side.of(row)
    db.session.refresh(row, with_for_update=True)
    moment = now()
    when = _effective(at, moment)
    if row.valid_to is not None and row.valid_to <= when:
        raise RateChangeError(f"this rate already ends at {moment_text(row.valid_to)}")
    if row.valid_from is not None and when <= row.valid_from:
        raise RateChangeError("it would end before it starts: delete the scheduled rate instead")
    before = row.valid_to
    row.valid_to = when
    _flush(side)
    audit.record("end", side.entity, row.id, actor=actor, prefix=row.prefix, valid_to=[before, when])
    return when


def delete_scheduled(row, actor: str | None = None) -> None:
    """Delete a rate that has not started (it never priced a call)."""
    side = Side.of(row)
    if started(row):
        raise RateChangeError("this rate has already applied to calls and is kept for their history: end it instead")
    ident, prefix = row.id, row.prefix
    db.session.delete(row)
    _flush(side)
    audit.record("delete", side.entity, ident, actor=actor, name=f"Rate for prefix {prefix}", scheduled=True)


def _flush(side: Side) -> None:
    try:
        db.session.flush()
    except IntegrityError as exc:
        name = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
        if name.startswith("uq_"):
            raise RateChangeError("this prefix already has a rate starting at that moment: choose another "
                                  "effective date, or change that rate") from None
        raise RateChangeError(f"the database refused the change: {exc.orig}".splitlines()[0]) from None


@dataclass
class Version:
    row: object
    state: str                  # past | current | scheduled
    events: list                # audit rows about it, oldest first


def history(model, owner_id: int, prefix: str) -> list[Version]:
    """Every version of one prefix of one owner, oldest first, with who changed what."""
    side = SIDES[model]
    rows = db.session.scalars(select(model).where(getattr(model, side.owner_field) == owner_id, model.prefix == prefix)
                              .order_by(model.valid_from.asc().nullsfirst(), model.id)).all()
    moment = now()
    ids = [str(r.id) for r in rows]
    events: dict[str, list] = {}
    if ids:
        for log in db.session.scalars(select(AuditLog).where(AuditLog.entity == side.entity, AuditLog.entity_id.in_(ids))
                                      .order_by(AuditLog.at, AuditLog.id)):
            events.setdefault(log.entity_id, []).append(log)
    out = []
    for r in rows:
        if r.valid_to is not None and r.valid_to <= moment:
            state = "past"
        elif r.valid_from is not None and r.valid_from > moment:
            state = "scheduled"
        else:
            state = "current"
        out.append(Version(r, state, events.get(str(r.id), [])))
    return out
