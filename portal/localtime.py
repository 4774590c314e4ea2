"""The operator's time zone (BILLING_TIMEZONE): every date a person types and every
time a page shows is read in it.

* Python: `local_tz()`, `local_today()`, `day_start()` turn dates into aware moments.
* SQL of web requests: each pooled connection a request uses has its session
  `TimeZone` set to BILLING_TIMEZONE, so `now()::date`, `date_trunc('month', now())`
  and `CAST(:day AS date)` compared with a timestamptz mean the operator's days there
  too (self care's date filters rely on this). Connections used outside a request
  (CLI commands, jobs, the rate import thread) keep the server's default: the CDR
  spool import reads FreeSWITCH's local stamps in it, as FreeSWITCH itself does.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app, has_app_context, has_request_context
from sqlalchemy import event


def check_timezone(name: str | None) -> None:
    try:
        ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(f"BILLING_TIMEZONE={name!r} is not a time zone name such as Europe/Paris or UTC") from None


def local_tz() -> ZoneInfo:
    name = current_app.config.get("BILLING_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or "UTC")   # checked by install(): a wrong name stops the portal


def local_today() -> date:
    return datetime.now(local_tz()).date()


def day_start(day: date) -> datetime:
    """Midnight starting `day` in the operator's time zone."""
    return datetime.combine(day, time.min, local_tz())


def day_range(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) moments of whole local days; `date_to` is inclusive."""
    return (day_start(date_from) if date_from else None,
            day_start(date_to + timedelta(days=1)) if date_to else None)


def install(app: Flask, engine) -> None:
    """Check BILLING_TIMEZONE and give request connections that session time zone."""
    name = app.config.get("BILLING_TIMEZONE") or "UTC"
    check_timezone(name)

    @event.listens_for(engine, "checkout")
    def _session_timezone(dbapi_connection, record, _proxy):
        wanted = name if has_request_context() else None
        if record.info.get("timezone") == wanted:
            return
        with dbapi_connection.cursor() as cur:
            if wanted:
                cur.execute("SELECT set_config('TimeZone', %s, false)", (wanted,))
            else:
                cur.execute("RESET TimeZone")
        dbapi_connection.commit()   # a rolled-back transaction would undo the SET
        record.info["timezone"] = wanted
