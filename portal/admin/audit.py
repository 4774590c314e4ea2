"""Audit log of admin changes: filter by entity and actor, newest first."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from ..extensions import db
from ..models import AuditLog
from . import bp
from .manage.common import arg_text, paginate, searched


@bp.route("/audit")
def audit_log():
    stmt = select(AuditLog)
    if arg_text("entity"):
        stmt = stmt.where(AuditLog.entity == arg_text("entity"))
    if arg_text("entity_id"):
        stmt = stmt.where(AuditLog.entity_id == arg_text("entity_id"))
    stmt = searched(stmt, arg_text("actor"), AuditLog.actor)
    stmt = stmt.order_by(AuditLog.at.desc(), AuditLog.id.desc())
    entities = db.session.scalars(select(AuditLog.entity).distinct().order_by(AuditLog.entity)).all()
    return render_template("admin/audit.html", page=paginate(stmt), entities=entities)
