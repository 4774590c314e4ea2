"""CDR retention: monthly billing.cdr partitions archived to files and restored on
demand (services.py; docs/scaling-retention.md)."""
from __future__ import annotations

from pathlib import Path

from flask import current_app


def archive_dir() -> Path:
    """CDR_ARCHIVE_DIR, else the instance folder's cdr-archive/."""
    configured = current_app.config.get("CDR_ARCHIVE_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "cdr-archive"


def billing_timezone() -> str:
    return current_app.config.get("BILLING_TIMEZONE") or "UTC"
