"""Exchange rates (migration 0110): list, add (a new version of a pair closes the one it
replaces), close, and import from CSV (all or nothing, errors by line).

Rules the database applies when converting a provider's cost into a customer's currency
are in sql/procedures/12_exchange_rates.sql; the conversion's rounding in
docs/rounding.md. Here: what people and files may write.

Every function works in the current transaction and leaves committing to the caller,
except where a view says otherwise; every change is audited in that transaction.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..extensions import db
from ..formatting import moment_text
from ..localtime import local_tz
from ..models import Customer, ExchangeRate, Provider

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
RATE_PLACES = 12                       # billing.exchange_rate = numeric(24, 12)
MAX_RATE = Decimal(10) ** 12
MAX_IMPORT_LINES = 10_000
CSV_COLUMNS = ["from_currency", "to_currency", "rate", "valid_from", "valid_to"]
CSV_ALIASES = {"from": "from_currency", "to": "to_currency", "exchange_rate": "rate", "start": "valid_from",
               "end": "valid_to"}


class ExchangeRateError(ValueError):
    """A rate that cannot be written; `errors` lists (line, column, value, message) for files.
    `field` names the input that was wrong when there is one (the API's problem details
    name it); `conflict` marks a refusal because of another rate (a pair and start taken)."""

    def __init__(self, message: str, errors: list[dict] | None = None, *, field: str | None = None,
                 conflict: bool = False):
        super().__init__(message)
        self.errors = errors or []
        self.field = field
        self.conflict = conflict

    @property
    def sentence(self) -> str:
        """The message as a sentence for a page: first letter up, a final full stop."""
        text = str(self)
        return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# ----------------------------------------------------------------------------- parsing

def parse_currency(value) -> str:
    code = (value or "").strip().upper()
    if not CURRENCY_RE.match(code):
        raise ExchangeRateError(f"{value!r} is not a currency: three letters such as EUR")
    return code


def parse_rate(value) -> Decimal:
    """An exchange rate typed by a person: exact, > 0, at most 12 decimals (never rounded)."""
    if isinstance(value, float):
        raise ExchangeRateError("rates are decimals, not floats")
    try:
        rate = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise ExchangeRateError(f"{value!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise ExchangeRateError("an exchange rate is a number above 0")
    if rate.as_tuple().exponent < -RATE_PLACES:
        raise ExchangeRateError(f"{value} has more than {RATE_PLACES} decimal places")
    if rate >= MAX_RATE:
        raise ExchangeRateError(f"{value} is too large")
    return rate


def parse_when(value, *, required: bool) -> datetime | None:
    """A date (midnight in the operator's time zone) or an ISO date-time (in that zone
    when it has no offset)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=local_tz())
    textual = (str(value) if value is not None else "").strip()
    if not textual:
        if required:
            raise ExchangeRateError("a date is required")
        return None
    try:
        when = datetime.fromisoformat(textual.replace("Z", "+00:00"))
    except ValueError:
        raise ExchangeRateError(f"{textual!r} is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    return when if when.tzinfo else when.replace(tzinfo=local_tz())


# ----------------------------------------------------------------------------- queries

def now() -> datetime:
    return db.session.scalar(select(func.now()))


def listing(pair: str | None = None, state: str | None = None, *, from_currency: str | None = None,
            to_currency: str | None = None, in_force_at: datetime | None = None):
    """Rates ordered by pair, newest first; `pair` 'SEK-EUR' or a currency; `state`
    current | future | ended; `in_force_at`: per pair, the rate conversions use at that
    moment (find_exchange_rate's rule: of the rates valid then, the latest start)."""
    stmt = select(ExchangeRate)
    if from_currency:
        stmt = stmt.where(ExchangeRate.from_currency == from_currency)
    if to_currency:
        stmt = stmt.where(ExchangeRate.to_currency == to_currency)
    if in_force_at is not None:
        in_force = (select(ExchangeRate.id)
                    .where(ExchangeRate.valid_from <= in_force_at,
                           or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > in_force_at))
                    .ext(distinct_on(ExchangeRate.from_currency, ExchangeRate.to_currency))
                    .order_by(ExchangeRate.from_currency, ExchangeRate.to_currency, ExchangeRate.valid_from.desc()))
        stmt = stmt.where(ExchangeRate.id.in_(in_force))
    if pair:
        parts = [p for p in re.split(r"[^A-Za-z]+", pair.upper()) if p]
        if len(parts) == 2:
            stmt = stmt.where(ExchangeRate.from_currency == parts[0], ExchangeRate.to_currency == parts[1])
        elif len(parts) == 1:
            stmt = stmt.where(or_(ExchangeRate.from_currency == parts[0], ExchangeRate.to_currency == parts[0]))
    moment = func.now()
    if state == "current":
        stmt = stmt.where(ExchangeRate.valid_from <= moment,
                          or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > moment))
    elif state == "future":
        stmt = stmt.where(ExchangeRate.valid_from > moment)
    elif state == "ended":
        stmt = stmt.where(ExchangeRate.valid_to <= moment)
    return stmt.order_by(ExchangeRate.from_currency, ExchangeRate.to_currency, ExchangeRate.valid_from.desc(),
                         ExchangeRate.id.desc())


def valid_rate(from_currency: str, to_currency: str, at: datetime | None = None) -> ExchangeRate | None:
    """The rate the database would use (billing_private.find_exchange_rate's rule)."""
    row = db.session.execute(text("SELECT id FROM billing_private.find_exchange_rate(:f, :t, coalesce(:at, now()))"),
                             {"f": from_currency, "t": to_currency, "at": at}).first()
    return db.session.get(ExchangeRate, row[0]) if row else None


@dataclass
class MissingPair:
    from_currency: str
    to_currency: str
    providers: list[str]
    customers: int


def missing_pairs() -> list[MissingPair]:
    """Pairs that routing needs now and that have no valid rate: an enabled provider's
    currency -> a currency enabled customers pay in. Their routes are not offered."""
    rows = db.session.execute(text("""
        SELECT p.currency, c.currency, array_agg(DISTINCT p.name ORDER BY p.name), count(DISTINCT c.id)
          FROM billing.providers p
          JOIN billing.customers c ON c.currency <> p.currency AND c.enabled
         WHERE p.enabled
           AND NOT EXISTS (SELECT FROM billing_private.find_exchange_rate(p.currency, c.currency, now()))
         GROUP BY 1, 2 ORDER BY 1, 2""")).all()
    return [MissingPair(f, t, list(names), n) for f, t, names, n in rows]


def currencies_in_use() -> list[str]:
    """Currencies of customers and providers, for the form's suggestions."""
    rows = db.session.execute(select(Customer.currency).union(select(Provider.currency))).scalars()
    return sorted(set(rows))


# ----------------------------------------------------------------------------- changes

@dataclass
class Added:
    rate: ExchangeRate
    closed: list[ExchangeRate] = field(default_factory=list)   # versions it replaced
    in_the_past: bool = False                                   # starts before now: re-rate to apply


def _parsed(field_name: str, parse, value, **kw):
    """parse(value), its refusal naming `field_name`."""
    try:
        return parse(value, **kw)
    except ExchangeRateError as exc:
        raise ExchangeRateError(str(exc), field=field_name) from None


def _lock_pair(from_currency: str, to_currency: str) -> None:
    # two admins adding a version of one pair at once: one waits for the other
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('exchange_rates'), hashtext(:pair))"),
                       {"pair": f"{from_currency}>{to_currency}"})


def add(from_currency: str, to_currency: str, rate, valid_from=None, valid_to=None,
        actor: str | None = None) -> Added:
    """A new rate of a pair from `valid_from` (default now). The pair's rate valid at that
    instant is closed there (a new version, history kept); later scheduled rates stay.
    A start in the past is allowed (rates for calls already made); their billed cost
    changes only when their period is re-rated."""
    from_currency = _parsed("from_currency", parse_currency, from_currency)
    to_currency = _parsed("to_currency", parse_currency, to_currency)
    if from_currency == to_currency:
        raise ExchangeRateError("the two currencies are the same: nothing to convert", field="to_currency")
    rate = _parsed("rate", parse_rate, rate)
    moment = now()
    start = _parsed("valid_from", parse_when, valid_from, required=False) or moment
    end = _parsed("valid_to", parse_when, valid_to, required=False)
    if end is not None and end <= start:
        raise ExchangeRateError("'valid to' must be after 'valid from'", field="valid_to")
    _lock_pair(from_currency, to_currency)
    if db.session.scalar(select(ExchangeRate.id).where(
            ExchangeRate.from_currency == from_currency, ExchangeRate.to_currency == to_currency,
            ExchangeRate.valid_from == start)) is not None:
        raise ExchangeRateError(f"a {from_currency}→{to_currency} rate already starts at {moment_text(start)}: "
                                "close it or choose another start", field="valid_from", conflict=True)
    covering = db.session.scalars(select(ExchangeRate).where(
        ExchangeRate.from_currency == from_currency, ExchangeRate.to_currency == to_currency,
        ExchangeRate.valid_from < start,
        or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > start)).with_for_update()).all()
    added = Added(ExchangeRate(from_currency=from_currency, to_currency=to_currency, rate=rate,
                               valid_from=start, valid_to=end, created_by=actor),
                  in_the_past=start < moment)
    for old in covering:
        if end is None and old.valid_to is not None:
            added.rate.valid_to = end = old.valid_to   # the new version keeps the old one's end
        old.valid_to = start
        added.closed.append(old)
        audit.record("close", "exchange_rate", old.id, actor=actor, pair=old.pair, valid_to=start,
                     replaced_by_rate=rate)
    db.session.add(added.rate)
    _flush()
    audit.record("create", "exchange_rate", added.rate.id, actor=actor, pair=added.rate.pair, rate=rate,
                 valid_from=start, valid_to=added.rate.valid_to)
    return added


def close(rate_id: int, at=None, actor: str | None = None) -> ExchangeRate | None:
    """End a rate at `at` (default now). A rate that has not started by then is removed
    (it never applied); returns None in that case."""
    row = db.session.get(ExchangeRate, rate_id, with_for_update=True)
    if row is None:
        raise ExchangeRateError("no such exchange rate")
    moment = now()
    end = _parsed("at", parse_when, at, required=False) or moment
    if row.valid_to is not None and row.valid_to <= end:
        raise ExchangeRateError(f"this rate already ends at {moment_text(row.valid_to)}", field="at", conflict=True)
    if end <= row.valid_from:
        if row.valid_from <= moment:
            raise ExchangeRateError("a rate cannot end before it starts", field="at")
        db.session.delete(row)
        _flush()
        audit.record("delete", "exchange_rate", rate_id, actor=actor, pair=row.pair, reason="closed before its start")
        return None
    row.valid_to = end
    _flush()
    audit.record("close", "exchange_rate", row.id, actor=actor, pair=row.pair, valid_to=end)
    return row


def _flush() -> None:
    """Flush; a refusal of the database becomes an ExchangeRateError (the caller rolls back)."""
    try:
        db.session.flush()
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        raise ExchangeRateError(f"the database refused the rate: {getattr(diag, 'message_primary', exc.orig)}") from None


# ----------------------------------------------------------------------------- CSV import

@dataclass
class ImportResult:
    added: list[Added]

    @property
    def closed(self) -> int:
        return sum(len(a.closed) for a in self.added)

    @property
    def in_the_past(self) -> bool:
        return any(a.in_the_past for a in self.added)


def _columns(header: list[str]) -> dict[str, int]:
    names = [CSV_ALIASES.get(h.strip().lower().replace(" ", "_"), h.strip().lower().replace(" ", "_")) for h in header]
    missing = [c for c in CSV_COLUMNS[:4] if c not in names]
    if missing:
        raise ExchangeRateError(
            "the first line must name the columns: from_currency, to_currency, rate, valid_from[, valid_to] "
            f"(missing: {', '.join(missing)})",
            [{"line": 1, "column": "", "value": ",".join(header), "message": "missing columns: " + ", ".join(missing)}])
    return {name: names.index(name) for name in CSV_COLUMNS if name in names}


def read_csv(content: str) -> list[dict]:
    """Parsed rows of an exchange-rate file, or ExchangeRateError listing every bad line."""
    sample = content[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(content), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ExchangeRateError("the file is empty") from None
    columns = _columns(header)

    def records():
        for record in reader:
            if any(cell.strip() for cell in record):
                yield reader.line_num, {name: record[index] if index < len(record) else ""
                                        for name, index in columns.items()}
    return read_records(records())


def read_records(records, label=lambda line: f"line {line}") -> list[dict]:
    """Parsed rows of (line, {column: text}) records -- a file's lines or the API's
    JSON records, checked alike -- or ExchangeRateError listing every bad line.
    `label` names a line in messages (the API's records are rates[n])."""
    rows, errors = [], []
    for line, record in records:
        if len(rows) >= MAX_IMPORT_LINES:
            raise ExchangeRateError(f"at most {MAX_IMPORT_LINES} rates per file")
        row = {"line": line}
        for name in CSV_COLUMNS:
            if name not in record:
                continue
            value = (record[name] or "").strip()
            try:
                if name in ("from_currency", "to_currency"):
                    row[name] = parse_currency(value)
                elif name == "rate":
                    row[name] = parse_rate(value)
                else:
                    row[name] = parse_when(value, required=name == "valid_from")
            except ExchangeRateError as exc:
                errors.append({"line": line, "column": name, "value": value, "message": str(exc)})
        if "from_currency" in row and row.get("from_currency") == row.get("to_currency"):
            errors.append({"line": line, "column": "to_currency", "value": row["to_currency"],
                           "message": "the same currency on both sides"})
        if row.get("valid_to") and row.get("valid_from") and row["valid_to"] <= row["valid_from"]:
            errors.append({"line": line, "column": "valid_to", "value": str(row["valid_to"]),
                           "message": "must be after valid_from"})
        rows.append(row)
    seen: dict[tuple, int] = {}
    for row in rows:
        key = (row.get("from_currency"), row.get("to_currency"), row.get("valid_from"))
        if None not in key:
            if key in seen:
                errors.append({"line": row["line"], "column": "valid_from", "value": str(key[2]),
                               "message": f"the same pair and start are already on {label(seen[key])}"})
            seen.setdefault(key, row["line"])
    if errors:
        errors.sort(key=lambda e: e["line"])
        raise ExchangeRateError(f"{len(errors)} problem(s) found", errors[:100])
    if not rows:
        raise ExchangeRateError("the file has no rates under its header line")
    return rows


def import_csv(content: str, actor: str | None = None) -> ImportResult:
    """Add every rate of the file, pair by pair in order of start (so each closes the one
    before it), in one savepoint: any error imports nothing and names its line."""
    return import_rows(read_csv(content), actor)


def import_records(records, actor: str | None = None, label=lambda line: f"line {line}") -> ImportResult:
    """The import of (line, {column: text}) records (the API's bulk import): the file's
    checks and its all or nothing."""
    return import_rows(read_records(records, label), actor)


def import_rows(rows: list[dict], actor: str | None = None) -> ImportResult:
    """Add rows of read_records, all or nothing (import_csv)."""
    rows.sort(key=lambda r: (r["from_currency"], r["to_currency"], r["valid_from"]))
    added, errors = [], []
    savepoint = db.session.begin_nested()
    for row in rows:
        try:
            with db.session.begin_nested():
                added.append(add(row["from_currency"], row["to_currency"], row["rate"], row["valid_from"],
                                 row.get("valid_to"), actor=actor))
        except ExchangeRateError as exc:
            errors.append({"line": row["line"], "column": exc.field or "", "value": "", "message": str(exc)})
    if errors:
        savepoint.rollback()
        errors.sort(key=lambda e: e["line"])
        raise ExchangeRateError(f"{len(errors)} problem(s) found", errors[:100])
    savepoint.commit()
    audit.record("import", "exchange_rate", None, actor=actor, rates=len(added),
                 closed=sum(len(a.closed) for a in added))
    return ImportResult(added)


def export_rows() -> list[list]:
    """Every rate as CSV rows (CSV_COLUMNS), in the format import_csv reads back."""
    return [[r.from_currency, r.to_currency, r.rate_text, r.valid_from.astimezone(timezone.utc).isoformat(),
             r.valid_to.astimezone(timezone.utc).isoformat() if r.valid_to else ""]
            for r in db.session.scalars(listing())]
