"""Offset pages of an ORM select, for the list pages of every audience (the page
number comes from the view: each audience reads ?page= its own way)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .extensions import db


@dataclass
class Page:
    """One page of a list: the rows plus what the `pager` macro needs."""
    items: list
    page: int
    per_page: int
    total: int


def paginate(stmt, page: int, per_page: int) -> Page:
    """Run `stmt` (a select of ORM entities or rows) for one page, and count it all."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    result = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page))
    items = list(result.scalars() if _selects_one_entity(stmt) else result)
    return Page(items=items, page=page, per_page=per_page, total=total)


def _selects_one_entity(stmt) -> bool:
    descriptions = stmt.column_descriptions
    return len(descriptions) == 1 and descriptions[0].get("entity") is not None \
        and descriptions[0].get("expr") is descriptions[0].get("entity")
