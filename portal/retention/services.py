"""CDR retention: a month of rated CDRs (one `billing.cdr` partition) is archived to a
gzip CSV file with a JSON manifest, the file is read back and checked against the
partition, and only then is the partition detached and dropped. An archived month can
be restored: the file is checked against its manifest and the database's record, loaded
into a new table, counted again, and attached -- all in one transaction, so a damaged
file changes nothing. docs/scaling-retention.md has the procedure and the file format.

Every function works on a psycopg2 connection and never commits: the caller commits
(the command line, the scheduled job, the back-office task). An archive or a restore
runs in a savepoint, so when it raises (or is a dry run) the caller's transaction is
left as it was, with nothing written and no lock kept.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable

import psycopg2
from psycopg2 import sql

from .. import background

FORMAT_VERSION = 1
LOCK_CLASS = 0x63647261            # "cdra": first key of a month's advisory lock
LOCK_TIMEOUT = "10s"               # DETACH waits at most this long for queries on billing.cdr
REVIEW_CONDITION = "(overrun_seconds > 0 OR no_hold OR absurd_duration)"   # portal/cdrs/services.py
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
PARTITION_PATTERN = re.compile(r"^cdr_(\d{4})_(\d{2})$")

Progress = Callable[[str], None]


class RetentionError(ValueError):
    """An archive or restore that cannot be done; the message says why and what to do.
    Nothing has been changed when it is raised (the caller rolls back)."""


class Refused(RetentionError):
    """A month that is not closed for billing: the reasons say what is still open."""

    def __init__(self, month: date, reasons: list[str]):
        self.month, self.reasons = month, reasons
        super().__init__(f"{month:%Y-%m} is not archived: " + "; ".join(reasons))


# ----------------------------------------------------------------------------- names

def parse_month(value: str) -> date:
    match = MONTH_PATTERN.match((value or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise RetentionError(f"{value!r} is not a month: write it YYYY-MM, e.g. 2024-01")
    return date(int(match.group(1)), int(match.group(2)), 1)


def partition_name(month: date) -> str:
    return f"cdr_{month:%Y_%m}"


def data_file_name(month: date) -> str:
    return f"{partition_name(month)}.csv.gz"


def manifest_file_name(month: date) -> str:
    return f"{partition_name(month)}.manifest.json"


def _lock_key(month: date) -> int:
    return zlib.crc32(f"{month:%Y-%m}".encode()) - 2 ** 31


# ---------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class Figures:
    rows: int
    sum_billsec: int
    sum_sell_amount: Decimal
    sum_cost_amount: Decimal

    def as_manifest(self) -> dict:
        return {"rows": self.rows, "sum_billsec": self.sum_billsec,
                "sum_sell_amount": str(self.sum_sell_amount), "sum_cost_amount": str(self.sum_cost_amount)}

    @classmethod
    def from_manifest(cls, m: dict) -> "Figures":
        return cls(int(m["rows"]), int(m["sum_billsec"]), Decimal(m["sum_sell_amount"]), Decimal(m["sum_cost_amount"]))

    def differences(self, other: "Figures") -> list[str]:
        return [f"{name} {getattr(self, name)} != {getattr(other, name)}"
                for name in ("rows", "sum_billsec", "sum_sell_amount", "sum_cost_amount")
                if getattr(self, name) != getattr(other, name)]


def _table_figures(cur, table: str) -> Figures:
    cur.execute(sql.SQL("SELECT count(*), coalesce(sum(billsec), 0), coalesce(sum(sell_amount), 0), "
                        "coalesce(sum(cost_amount), 0) FROM billing.{}").format(sql.Identifier(table)))
    rows, billsec, sell, cost = cur.fetchone()
    return Figures(int(rows), int(billsec), Decimal(sell), Decimal(cost))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_figures(path: Path, columns: list[str]) -> Figures:
    """Read a gzip CSV archive back: header, row count and sums (what verification compares)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != columns:
                raise RetentionError(f"{path.name}: the header is not the manifest's column list")
            i_billsec, i_sell, i_cost = (columns.index(c) for c in ("billsec", "sell_amount", "cost_amount"))
            rows = billsec = 0
            sell = cost = Decimal(0)
            for row in reader:
                rows += 1
                billsec += int(row[i_billsec])
                sell += Decimal(row[i_sell])
                cost += Decimal(row[i_cost])
    except (OSError, EOFError, zlib.error, csv.Error, ValueError, IndexError, ArithmeticError) as exc:
        if isinstance(exc, RetentionError):
            raise
        raise RetentionError(f"{path.name} cannot be read back ({type(exc).__name__}: {exc})") from exc
    return Figures(rows, billsec, sell, cost)


# ------------------------------------------------------------------------- partitions

@dataclass
class Partition:
    """One month: a live partition, an archived file, or both (restored)."""
    month: date | None                 # None for the default partition
    name: str
    state: str                         # 'live' | 'archived' | 'restored' | 'default'
    range_from: datetime | None = None
    range_to: datetime | None = None
    estimated_rows: int | None = None  # pg_class.reltuples; None when never analysed
    bytes: int | None = None           # table + indexes on disk
    archive: dict | None = None        # the billing.cdr_archives row, when there is one
    file_present: bool | None = None
    rows_exact: bool = False           # estimated_rows was counted, not estimated
    archivable: bool = False           # older than last month (the archive may still be refused)

    @property
    def rows(self) -> int | None:
        if self.state == "archived":
            return self.archive["rows"]
        return self.estimated_rows

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}" if self.month else "default"


_LIVE_SQL = """
    SELECT p.relname, p.bounds[1]::timestamptz, p.bounds[2]::timestamptz, p.reltuples, p.bytes, p.is_default
      FROM (SELECT c.relname, c.reltuples::bigint AS reltuples, pg_total_relation_size(c.oid) AS bytes,
                   regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)')
                       AS bounds,
                   pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
              FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'billing.cdr'::regclass) p"""


def _live(cur) -> list[tuple]:
    cur.execute(_LIVE_SQL)
    return cur.fetchall()


def _archive_rows(cur) -> dict[date, dict]:
    cur.execute("SELECT * FROM billing.cdr_archives")
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row)) for row in cur.fetchall()}


COUNT_BELOW_BYTES = 64 * 1024 * 1024   # smaller partitions are counted, larger ones estimated


def partitions(conn, directory: Path | None = None) -> list[Partition]:
    """Every month of billing.cdr, newest first: live partitions (rows: counted below
    COUNT_BELOW_BYTES, else PostgreSQL's estimate; size on disk), archived months (file,
    size) and restored ones; the default partition last."""
    with conn.cursor() as cur:
        live = _live(cur)
        archives = _archive_rows(cur)
        cur.execute("SELECT date_trunc('month', now()) - interval '1 month'")
        kept_from = cur.fetchone()[0]
    out: dict[date, Partition] = {}
    default = None
    for name, range_from, range_to, reltuples, size, is_default in live:
        match = PARTITION_PATTERN.match(name)
        if is_default or not match:
            default = Partition(None, name, "default", estimated_rows=None if reltuples < 0 else reltuples, bytes=size)
            continue
        month = date(int(match.group(1)), int(match.group(2)), 1)
        out[month] = Partition(month, name, "live", range_from, range_to, None if reltuples < 0 else reltuples, size,
                               archivable=range_to <= kept_from)
    for month, row in archives.items():
        p = out.get(month)
        if p is None:
            p = out[month] = Partition(month, row["partition_name"], "archived", row["range_from"], row["range_to"])
        elif row["state"] == "restored":
            p.state = "restored"
        p.archive = row
        if directory is not None:
            p.file_present = (directory / row["file_name"]).is_file()
    listing = [out[m] for m in sorted(out, reverse=True)] + ([default] if default else [])
    with conn.cursor() as cur:
        for p in listing:
            if p.state != "archived" and (p.estimated_rows is None or (p.bytes or 0) < COUNT_BELOW_BYTES):
                cur.execute(sql.SQL("SELECT count(*) FROM billing.{}").format(sql.Identifier(p.name)))
                p.estimated_rows, p.rows_exact = cur.fetchone()[0], True
    return listing


def _live_partition(cur, month: date) -> tuple | None:
    name = partition_name(month)
    for row in _live(cur):
        if row[0] == name:
            return row
    return None


def _columns(cur) -> list[str]:
    cur.execute("""SELECT attname FROM pg_attribute WHERE attrelid = 'billing.cdr'::regclass
                      AND attnum > 0 AND NOT attisdropped ORDER BY attnum""")
    return [r[0] for r in cur.fetchall()]


def _audit(cur, actor: str, action: str, month: date, details: dict) -> None:
    """The audit row of an archive or restore, in its transaction (like portal/audit.py's)."""
    cur.execute("""INSERT INTO billing.audit_log (actor, action, entity, entity_id, details)
                   VALUES (%s, %s, 'cdr_month', %s, %s)""", (actor, action, f"{month:%Y-%m}", json.dumps(details)))


@contextmanager
def _savepoint(conn, discard: bool = False):
    """Run the block in a savepoint: an exception (or `discard`) undoes its writes and
    releases its locks, and leaves the caller's transaction as it was before."""
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT cdr_retention")
    try:
        yield
    except BaseException:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK TO SAVEPOINT cdr_retention")
            cur.execute("RELEASE SAVEPOINT cdr_retention")
        raise
    with conn.cursor() as cur:
        if discard:
            cur.execute("ROLLBACK TO SAVEPOINT cdr_retention")
        cur.execute("RELEASE SAVEPOINT cdr_retention")


def _lock_month(cur, month: date) -> None:
    cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS, _lock_key(month)))
    if not cur.fetchone()[0]:
        raise RetentionError(f"another archive or restore of {month:%Y-%m} is running; try again when it is done")


# --------------------------------------------------------------------------- closure

def refusals(cur, month: date, range_from: datetime, range_to: datetime, table: str, *,
             billing_tz: str = "UTC", accept_review: bool = False) -> list[str]:
    """Why the month is not closed for billing (empty when it may be archived)."""
    reasons: list[str] = []
    cur.execute("SELECT %s::timestamptz > date_trunc('month', now()) - interval '1 month'", (range_to,))
    if cur.fetchone()[0]:
        reasons.append("it is the current or the last month: those stay in the database "
                       "(their partitions are kept by ensure_cdr_partitions, and the month may still be billed)")
        return reasons
    ident = sql.Identifier(table)
    cur.execute(sql.SQL("SELECT count(*) FILTER (WHERE status = 'unrated'), count(*) FILTER (WHERE {review}) "
                        "FROM billing.{t}").format(review=sql.SQL(REVIEW_CONDITION), t=ident))
    unrated, review = cur.fetchone()
    if unrated:
        reasons.append(f"{unrated} of its calls are unrated: fix their rates or customers and re-rate the month")
    cur.execute("SELECT count(*) FROM billing.fs_cdr WHERE start_stamp >= %s AND start_stamp < %s "
                "AND status <> 'rated'", (range_from, range_to))
    raw = cur.fetchone()[0]
    if raw:
        reasons.append(f"{raw} raw CDRs of the month are not rated (status new or unrated in billing.fs_cdr)")
    if review and not accept_review:
        reasons.append(f"{review} calls are to review (beyond their grant, without a hold, or too long): look at them "
                       "with the CDR browser's 'calls to review' filter, then archive with the review accepted")
    cur.execute(sql.SQL("""
        WITH usage AS (
            SELECT DISTINCT c.customer_id, date_trunc('month', c.start_stamp AT TIME ZONE %(tz)s)::date AS month
              FROM billing.{t} c
             WHERE c.status = 'rated' AND c.customer_id IS NOT NULL AND (c.billsec > 0 OR c.sell_amount <> 0))
        SELECT coalesce(cu.name, '#' || u.customer_id), u.month
          FROM usage u
          LEFT JOIN billing.customers cu ON cu.id = u.customer_id
         WHERE NOT EXISTS (SELECT 1 FROM billing.invoices i
                            WHERE i.customer_id = u.customer_id AND i.status = 'issued' AND i.kind <> 'credit_note'
                              AND i.period_start <= u.month AND i.period_end > u.month)
         ORDER BY 2, 1""").format(t=ident), {"tz": billing_tz})
    missing = cur.fetchall()
    if missing:
        shown = ", ".join(f"{name} ({m:%Y-%m})" for name, m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        reasons.append(f"{len(missing)} customers with calls in it have no issued invoice or statement for the month: "
                       f"{shown}{more} (issue them first)")
    cur.execute("""SELECT count(*) FROM billing.rerate_jobs
                    WHERE status IN ('previewing', 'running') AND period_from < %s AND period_to > %s""",
                (range_to, range_from))
    if cur.fetchone()[0]:
        reasons.append("a re-rate of a period overlapping the month is running: wait until it is done")
    return reasons


def refuse_archived(conn, start: datetime, end: datetime) -> None:
    """Raise RetentionError when [start, end) touches an archived month (re-rating guard)."""
    with conn.cursor() as cur:
        months = archived_months_between(cur, start, end)
    if months:
        listed = ", ".join(f"{m:%Y-%m}" for m in months)
        raise RetentionError(f"the CDRs of {listed} are archived: restore the month first "
                             f"(`flask --app wsgi billing cdr-restore {months[0]:%Y-%m}` or Ops > CDR partitions)")


def archived_months_between(cur, start: datetime, end: datetime) -> list[date]:
    """Archived (not restored) months whose CDRs overlap [start, end): a re-rate of such a
    period would write billing.cdr rows of a month that has no partition."""
    cur.execute("""SELECT month FROM billing.cdr_archives
                    WHERE state = 'archived' AND range_from < %s AND range_to > %s ORDER BY month""", (end, start))
    return [r[0] for r in cur.fetchall()]


# --------------------------------------------------------------------------- archive

@dataclass
class ArchiveResult:
    month: date
    figures: Figures
    partition_bytes: int
    data_file: Path
    manifest_file: Path
    file_bytes: int = 0
    sha256: str = ""
    dry_run: bool = False

    def summary(self) -> str:
        f = self.figures
        head = (f"{self.month:%Y-%m}: {f.rows:,} CDRs, billsec {f.sum_billsec}, sell {f.sum_sell_amount}, "
                f"cost {f.sum_cost_amount}; partition {size_text(self.partition_bytes)}")
        if self.dry_run:
            return f"dry run: would archive {head} to {self.data_file} (nothing written, nothing dropped)"
        return (f"archived {head} -> {self.data_file} ({size_text(self.file_bytes)}, sha256 {self.sha256[:12]}...), "
                "file verified, partition dropped")


def size_text(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive(conn, month: date, directory: Path, *, actor: str, billing_tz: str = "UTC", dry_run: bool = False,
            accept_review: bool = False, progress: Progress = lambda phase: None) -> ArchiveResult:
    """Archive one month (see the module's docstring). The partition is locked in SHARE
    mode from the first count to the drop, so what is written is what is dropped. Raises
    Refused when the month is not closed for billing, RetentionError on any other
    problem (nothing changed then); the caller commits on success."""
    directory = Path(directory)
    with _savepoint(conn, discard=dry_run):
        return _archive(conn, month, directory, actor=actor, billing_tz=billing_tz, dry_run=dry_run,
                        accept_review=accept_review, progress=progress)


def _archive(conn, month: date, directory: Path, *, actor: str, billing_tz: str, dry_run: bool,
             accept_review: bool, progress: Progress) -> ArchiveResult:
    name = partition_name(month)
    with conn.cursor() as cur:
        _lock_month(cur, month)
        progress("checking")
        live = _live_partition(cur, month)
        if live is None:
            cur.execute("SELECT state, file_name FROM billing.cdr_archives WHERE month = %s", (month,))
            row = cur.fetchone()
            if row and row[0] == "archived":
                raise RetentionError(f"{month:%Y-%m} is already archived ({row[1]})")
            raise RetentionError(f"billing.cdr has no partition for {month:%Y-%m}")
        _name, range_from, range_to, _tuples, size, _default = live
        cur.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
        try:
            cur.execute(sql.SQL("LOCK TABLE billing.{} IN SHARE MODE").format(sql.Identifier(name)))
        except psycopg2.errors.LockNotAvailable as exc:
            raise RetentionError(f"{name} is being written (a re-rate?): try again later") from exc
        reasons = refusals(cur, month, range_from, range_to, name, billing_tz=billing_tz, accept_review=accept_review)
        if reasons:
            raise Refused(month, reasons)
        figures = _table_figures(cur, name)
        result = ArchiveResult(month, figures, size, directory / data_file_name(month),
                               directory / manifest_file_name(month), dry_run=dry_run)
        if dry_run:
            return result
        columns = _columns(cur)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RetentionError(f"cannot create the archive directory {directory}: {exc}") from exc
        tmp_data = result.data_file.with_name(result.data_file.name + ".tmp")
        tmp_manifest = result.manifest_file.with_name(result.manifest_file.name + ".tmp")
        try:
            progress("writing the file")
            with open(tmp_data, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz, \
                        io.TextIOWrapper(gz, encoding="utf-8", newline="") as text_out:
                    cur.copy_expert(sql.SQL("COPY billing.{} ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
                        sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))).as_string(conn),
                        text_out)
                raw.flush()
                os.fsync(raw.fileno())
            progress("verifying the file")
            read_back = file_figures(tmp_data, columns)
            differences = figures.differences(read_back)
            if differences:
                raise RetentionError(f"the file written for {month:%Y-%m} does not read back as the partition "
                                     f"({'; '.join(differences)}): the partition is kept")
            result.sha256, result.file_bytes = _file_sha256(tmp_data), tmp_data.stat().st_size
            cur.execute("SELECT current_database(), now()")
            database, now = cur.fetchone()
            manifest = {"format": FORMAT_VERSION, "table": "billing.cdr", "partition": name,
                        "month": f"{month:%Y-%m}", "range_from": range_from.isoformat(),
                        "range_to": range_to.isoformat(), "file": result.data_file.name,
                        "file_bytes": result.file_bytes, "sha256": result.sha256, "columns": columns,
                        "csv": "RFC 4180 with a header line, UTF-8, NULL as an empty unquoted field (COPY csv)",
                        **figures.as_manifest(), "partition_bytes": size, "database": database,
                        "archived_at": now.isoformat(), "archived_by": actor}
            with open(tmp_manifest, "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_data, result.data_file)
            os.replace(tmp_manifest, result.manifest_file)
            _fsync_dir(directory)
        except BaseException:
            for tmp in (tmp_data, tmp_manifest):
                tmp.unlink(missing_ok=True)
            raise
        progress("dropping the partition")
        try:
            cur.execute(sql.SQL("ALTER TABLE billing.cdr DETACH PARTITION billing.{}").format(sql.Identifier(name)))
        except psycopg2.errors.LockNotAvailable as exc:
            raise RetentionError(f"billing.cdr stayed busy for {LOCK_TIMEOUT} (long reports?): the file is written "
                                 "and verified, the partition is kept; archive the month again later") from exc
        cur.execute(sql.SQL("DROP TABLE billing.{}").format(sql.Identifier(name)))
        cur.execute("""
            INSERT INTO billing.cdr_archives AS a (month, partition_name, range_from, range_to, state, file_name,
                        file_bytes, sha256, rows, sum_billsec, sum_sell_amount, sum_cost_amount, columns,
                        partition_bytes, archived_at, archived_by)
            VALUES (%(month)s, %(name)s, %(from)s, %(to)s, 'archived', %(file)s, %(bytes)s, %(sha)s, %(rows)s,
                    %(billsec)s, %(sell)s, %(cost)s, %(columns)s, %(size)s, now(), %(actor)s)
            ON CONFLICT (month) DO UPDATE SET
                partition_name = EXCLUDED.partition_name, range_from = EXCLUDED.range_from,
                range_to = EXCLUDED.range_to, state = 'archived', file_name = EXCLUDED.file_name,
                file_bytes = EXCLUDED.file_bytes, sha256 = EXCLUDED.sha256, rows = EXCLUDED.rows,
                sum_billsec = EXCLUDED.sum_billsec, sum_sell_amount = EXCLUDED.sum_sell_amount,
                sum_cost_amount = EXCLUDED.sum_cost_amount, columns = EXCLUDED.columns,
                partition_bytes = EXCLUDED.partition_bytes, archived_at = now(), archived_by = EXCLUDED.archived_by""",
                    {"month": month, "name": name, "from": range_from, "to": range_to,
                     "file": result.data_file.name, "bytes": result.file_bytes, "sha": result.sha256,
                     "rows": figures.rows, "billsec": figures.sum_billsec, "sell": figures.sum_sell_amount,
                     "cost": figures.sum_cost_amount, "columns": columns, "size": size, "actor": actor})
        _audit(cur, actor, "archive", month, {**figures.as_manifest(), "file": result.data_file.name,
                                              "sha256": result.sha256, "partition_bytes": size,
                                              "accept_review": accept_review})
    return result


# --------------------------------------------------------------------------- restore

@dataclass
class RestoreResult:
    month: date
    figures: Figures
    data_file: Path

    def summary(self) -> str:
        f = self.figures
        return (f"restored {self.month:%Y-%m}: {f.rows:,} CDRs from {self.data_file} (sha256 and manifest checked, "
                f"billsec {f.sum_billsec}, sell {f.sum_sell_amount}, cost {f.sum_cost_amount} counted again); "
                "partition attached")


def read_manifest(directory: Path, month: date) -> dict:
    path = Path(directory) / manifest_file_name(month)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise RetentionError(f"the manifest {path} is missing: nothing was restored") from None
    except (OSError, ValueError) as exc:
        raise RetentionError(f"the manifest {path} cannot be read ({exc}): nothing was restored") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise RetentionError(f"{path} is not a version {FORMAT_VERSION} CDR archive manifest: nothing was restored")
    return manifest


def restore(conn, month: date, directory: Path, *, actor: str,
            progress: Progress = lambda phase: None) -> RestoreResult:
    """Re-create the month's partition from its archive and attach it (see the module's
    docstring); the caller commits. On RetentionError nothing has changed."""
    directory = Path(directory)
    with _savepoint(conn):
        return _restore(conn, month, directory, actor=actor, progress=progress)


def _restore(conn, month: date, directory: Path, *, actor: str, progress: Progress) -> RestoreResult:
    name = partition_name(month)
    with conn.cursor() as cur:
        _lock_month(cur, month)
        progress("checking the archive")
        cur.execute("""SELECT state, file_name, sha256, file_bytes, rows, sum_billsec, sum_sell_amount,
                              sum_cost_amount, columns, range_from, range_to
                         FROM billing.cdr_archives WHERE month = %s""", (month,))
        row = cur.fetchone()
        if row is None:
            raise RetentionError(f"{month:%Y-%m} has never been archived: nothing to restore")
        state, file_name, sha, file_bytes, rows, billsec, sell, cost, columns, range_from, range_to = row
        if state != "archived":
            raise RetentionError(f"{month:%Y-%m} is restored already: its CDRs are in billing.{name}")
        recorded = Figures(rows, billsec, Decimal(sell), Decimal(cost))
        manifest = read_manifest(directory, month)
        problems = []
        if manifest.get("month") != f"{month:%Y-%m}" or manifest.get("file") != file_name:
            problems.append("the manifest is of another month or file")
        if manifest.get("sha256") != sha:
            problems.append("the manifest's sha256 is not the one recorded in billing.cdr_archives")
        if manifest.get("columns") != list(columns):
            problems.append("the manifest's columns are not the recorded ones")
        try:
            if Figures.from_manifest(manifest) != recorded:
                problems.append("the manifest's counts are not the recorded ones")
        except (KeyError, ValueError, ArithmeticError):
            problems.append("the manifest's counts cannot be read")
        data_file = directory / file_name
        if not data_file.is_file():
            problems.append(f"{data_file} is missing")
        else:
            actual = _file_sha256(data_file)
            if actual != sha:
                problems.append(f"{data_file.name} has sha256 {actual[:12]}..., its manifest says {sha[:12]}... "
                                "(the file is damaged or was replaced)")
        if problems:
            raise RetentionError(f"the archive of {month:%Y-%m} is refused: {'; '.join(problems)}. Nothing was restored")
        unknown = set(columns) - set(_columns(cur))
        if unknown:
            raise RetentionError(f"billing.cdr no longer has the columns {sorted(unknown)} of the archive: nothing was "
                                 "restored")
        cur.execute("SELECT to_regclass(%s)", (f"billing.{name}",))
        if cur.fetchone()[0] is not None:
            raise RetentionError(f"a table billing.{name} exists already: rename or drop it, then restore again")
        cur.execute("SELECT count(*) FROM billing.cdr_default WHERE start_stamp >= %s AND start_stamp < %s",
                    (range_from, range_to))
        strays = cur.fetchone()[0]
        if strays:
            raise RetentionError(f"{strays} CDRs of {month:%Y-%m} arrived after it was archived and are in "
                                 "billing.cdr_default: look at them before restoring (nothing was restored)")
        progress("loading the rows")
        cur.execute(sql.SQL("CREATE TABLE billing.{} (LIKE billing.cdr INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
                            "WITH (fillfactor = 100)").format(sql.Identifier(name)))
        copy = sql.SQL("COPY billing.{} ({}) FROM STDIN WITH (FORMAT csv, HEADER MATCH)").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))).as_string(conn)
        try:
            with gzip.open(data_file, "rt", encoding="utf-8", newline="") as f:
                cur.copy_expert(copy, f)
        except (OSError, EOFError, zlib.error, psycopg2.DataError) as exc:
            raise RetentionError(f"{data_file.name} cannot be loaded ({exc}): nothing was restored") from exc
        progress("counting the rows")
        loaded = _table_figures(cur, name)
        differences = recorded.differences(loaded)
        if differences:
            raise RetentionError(f"{data_file.name} loads as other figures than its manifest's "
                                 f"({'; '.join(differences)}): nothing was restored")
        progress("attaching the partition")
        cur.execute(sql.SQL("ALTER TABLE billing.cdr ATTACH PARTITION billing.{} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), sql.Literal(range_from), sql.Literal(range_to)))
        cur.execute("""UPDATE billing.cdr_archives SET state = 'restored', restored_at = now(), restored_by = %s
                        WHERE month = %s""", (actor, month))
        _audit(cur, actor, "restore", month, {**loaded.as_manifest(), "file": file_name, "sha256": sha})
    return RestoreResult(month, loaded, data_file)


# ----------------------------------------------------------------- the monthly job

def due_months(conn, keep_months: int) -> list[date]:
    """Live months older than the retention (`keep_months` full months before the current
    one are kept); none when keep_months is 0. Restored months count as live: a month
    restored for browsing is archived again by the next run."""
    if keep_months <= 0:
        return []
    with conn.cursor() as cur:
        cur.execute("SELECT date_trunc('month', now()) - make_interval(months => %s)", (keep_months,))
        cutoff = cur.fetchone()[0]
        live = _live(cur)
    months = []
    for name, _from, range_to, *_rest in live:
        match = PARTITION_PATTERN.match(name)
        if match and range_to is not None and range_to <= cutoff:
            months.append(date(int(match.group(1)), int(match.group(2)), 1))
    return sorted(months)


@dataclass
class RunOutcome:
    archived: list[ArchiveResult] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.archived)} month(s) archived"]
        parts += [r.summary() for r in self.archived]
        parts += [str(r) for r in self.refused]
        parts += self.failed
        return "; ".join(parts)


def run_retention(connection: Callable[[], object], directory: Path, *, keep_months: int, actor: str,
                  billing_tz: str = "UTC", dry_run: bool = False,
                  commit: Callable[[], None] | None = None) -> RunOutcome:
    """Archive every month older than the retention, `commit` after each (not in a dry
    run); months that are refused or fail are listed and left live. `connection()` gives
    the connection of the current transaction (asked again after each commit)."""
    commit = commit or (lambda: connection().commit())
    outcome = RunOutcome()
    for month in due_months(connection(), keep_months):
        try:
            outcome.archived.append(archive(connection(), month, directory, actor=actor, billing_tz=billing_tz,
                                            dry_run=dry_run))
        except Refused as exc:
            outcome.refused.append(exc)
            continue
        except RetentionError as exc:
            outcome.failed.append(str(exc))
            continue
        if not dry_run:
            commit()
    return outcome


# ----------------------------------------------------------- back-office tasks

def create_task(conn, month: date, action: str, actor: str, accept_review: bool = False) -> int:
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO billing.cdr_archive_tasks (month, action, accept_review, created_by)
                       VALUES (%s, %s, %s, %s) RETURNING id""", (month, action, accept_review, actor))
        return cur.fetchone()[0]


def fail_abandoned_tasks(conn, grace_seconds: int = 60) -> int:
    """Tasks left 'queued' or 'running' by a process that stopped (a restart, a crash):
    their month's advisory lock is no longer held. They are marked failed -- their
    transaction died with the process, so nothing was changed -- and the page stops
    waiting for them. Returns how many."""
    with conn.cursor() as cur:
        cur.execute("""SELECT id, month FROM billing.cdr_archive_tasks
                        WHERE status IN ('queued', 'running') AND created_at < now() - make_interval(secs => %s)""",
                    (grace_seconds,))
        stale = cur.fetchall()
        failed = 0
        for task_id, month in stale:
            cur.execute("""SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
                                             AND classid = %s::bigint::oid AND objid = %s::bigint::oid)""",
                        (LOCK_CLASS, _lock_key(month) & 0xFFFFFFFF))
            if not cur.fetchone()[0]:
                cur.execute("""UPDATE billing.cdr_archive_tasks
                                  SET status = 'failed', finished_at = now(),
                                      error = 'the process running it stopped before it finished; nothing was changed'
                                WHERE id = %s""", (task_id,))
                failed += 1
    return failed


def _set_task(status_conn, task_id: int, **values) -> None:
    sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values)
    with status_conn.cursor() as cur:
        cur.execute(sql.SQL("UPDATE billing.cdr_archive_tasks SET {} WHERE id = %(id)s").format(sets),
                    {**values, "id": task_id})


def run_task(conn, task_id: int, directory: Path, *, billing_tz: str = "UTC", status_conn=None) -> str:
    """Do the task's archive or restore on `conn`; its state goes to `status_conn` (an
    autocommitting connection in the background, `conn` itself inline). The caller
    commits `conn` when the returned status is 'done' and rolls it back otherwise."""
    status_conn = status_conn or conn
    with conn.cursor() as cur:
        cur.execute("SELECT month, action, accept_review, created_by FROM billing.cdr_archive_tasks WHERE id = %s",
                    (task_id,))
        month, action, accept_review, actor = cur.fetchone()
    _set_task(status_conn, task_id, status="running", phase="starting")

    def progress(phase: str) -> None:
        _set_task(status_conn, task_id, phase=phase)

    try:
        if action == "archive":
            result = archive(conn, month, directory, actor=actor, billing_tz=billing_tz,
                             accept_review=accept_review, progress=progress).summary()
        else:
            result = restore(conn, month, directory, actor=actor, progress=progress).summary()
    except Refused as exc:
        _set_task(status_conn, task_id, status="refused", phase=None, error=str(exc), finished_at=_now())
        return "refused"
    except RetentionError as exc:
        _set_task(status_conn, task_id, status="failed", phase=None, error=str(exc), finished_at=_now())
        return "failed"
    _set_task(status_conn, task_id, status="done", phase=None, result=result, finished_at=_now())
    return "done"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_background(dsn: str, task_id: int, directory: Path, billing_tz: str) -> threading.Thread:
    """Run the task in a thread with its own two connections (the portal's way; tests run inline)."""
    return background.start(
        dsn, f"cdr-archive-{task_id}",
        lambda conn, status_conn: run_task(conn, task_id, directory, billing_tz=billing_tz,
                                           status_conn=status_conn) == "done",
        lambda status_conn, exc: _set_task(status_conn, task_id, status="failed", phase=None,
                                           error=f"{type(exc).__name__}: {exc}", finished_at=_now()))
