"""Helpers of list pages: page arguments, counted pages, safe substring search."""
from __future__ import annotations

from flask import current_app, request
from sqlalchemy import Select, func, select

from .extensions import db


def contains(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def paginate(query: Select) -> dict:
    """The page of `query` asked for by ?page=N: items, total, page, per_page (for the pager macro)."""
    page = max(request.args.get("page", 1, type=int), 1)
    per_page = current_app.config["PAGE_SIZE"]
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "total": total, "page": page, "per_page": per_page}
