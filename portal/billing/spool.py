"""Import mod_cdr_pg_csv spool files (written while PostgreSQL was unreachable).

FreeSWITCH has no replay of its own. Formats, from
src/mod/event_handlers/mod_cdr_pg_csv/mod_cdr_pg_csv.c (my_on_reporting, insert_cdr):

* ``cdr-spool.csv`` (spool-format csv): one line per CDR, the VALUES list of the failed
  INSERT: fields in the order of the ``<schema>`` fields of cdr_pg_csv.conf.xml,
  separated by ``,``; a quoted field is ``'text'`` with ``'`` doubled (PQescapeString),
  an empty value of a nullable field is the bare word ``null``, a field with
  ``quote="false"`` is written bare.
* ``cdr-spool.sql`` (spool-format sql): one line per CDR,
  ``INSERT INTO <db-table> (<columns>) VALUES (<values>);`` with the same values.

The SQL text of a spool file is never executed: each line is parsed into column names
(checked against billing.fs_cdr's columns) and values, which are sent as bind
parameters to ``INSERT INTO billing.fs_cdr``. PostgreSQL converts them to the column
types exactly as it would have converted FreeSWITCH's literals (``*_stamp`` text is read
in the session time zone, as in FreeSWITCH's own INSERT).

Re-importing is harmless: the billing trigger ignores a uuid it already has (the INSERT
reports 0 rows), which is counted as a duplicate. Each line is inserted under its own
savepoint, so a corrupt line is reported with its number and the others still load.

FreeSWITCH keeps the spool file open and appends to it (moving it away would make it
write into the moved file; rotating it with SIGHUP crashed 1.10.12 in our tests: its
HUP handler closes the CDR connection without the module's lock). So the file stays
where it is and each run resumes where the last one stopped: ``<file>.imported`` next
to it holds how far it was billed (bytes, lines, and a fingerprint of its first line, so
a new file of the same name starts again from the top). Only complete lines are read --
a line FreeSWITCH is still writing waits for the next run. ``from_start`` reads it all
again (harmless: already billed CDRs are duplicates).

Several imports at once (two switches' spools, or a retry started while the first still
runs) book the same customers: each billed CDR locks its customer's row until commit.
So lines go in small batches (BATCH), each inserted in customer order and committed on
its own: every import takes customer locks in the same order and holds them briefly, so
imports wait for each other instead of deadlocking. A transient error anyway (deadlock,
serialization failure, lock or statement timeout: the billing trigger lets those abort
the INSERT instead of parking the call as unrated) is retried, up to RETRIES times.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ..extensions import db

# The columns FreeSWITCH may send: billing.fs_cdr minus what the database sets.
FS_CDR_COLUMNS = frozenset({
    "uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
    "duration", "billsec", "hangup_cause", "sip_hangup_disposition", "billing_customer_id",
    "billing_endpoint_id", "billing_destination", "billing_sell_prefix", "billing_sell_rate",
    "billing_route_seq", "billing_gateway", "billing_provider_id", "billing_cost_rate",
    "hangup_cause_q850", "billmsec", "start_epoch", "answer_epoch", "end_epoch", "network_addr",
    "sip_user", "last_bridge_proto_specific_hangup_cause", "billing_reject_reason",
})

# CSV column order when neither --columns nor a cdr_pg_csv.conf.xml is given: CONTRACT 2.
DEFAULT_COLUMNS = (
    "uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
    "duration", "billsec", "hangup_cause", "sip_hangup_disposition", "billing_customer_id",
    "billing_endpoint_id", "billing_destination", "billing_sell_prefix", "billing_sell_rate",
    "billing_route_seq", "billing_gateway", "billing_provider_id", "billing_cost_rate",
)

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "freeswitch" / "conf" / "autoload_configs" / "cdr_pg_csv.conf.xml"

SQL_LINE = re.compile(
    r"^\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_.\"]*)\s*\(([^()]*)\)\s*VALUES\s*\((.*)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL)
COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
BATCH = 100
RETRIES = 5
# SQLSTATEs that mean "try again": classes 40 (deadlock, serialization) and 57 (cancel,
# shutdown), 55P03 (lock timeout), 53 (out of resources), 08 (connection).
TRANSIENT_PREFIXES = ("40", "57", "53", "08", "55P03")


class SpoolError(ValueError):
    """A spool file or column list that cannot be imported at all."""


class LineError(ValueError):
    """One line that cannot be parsed."""


@dataclass
class ImportResult:
    lines: int = 0
    inserted: int = 0
    duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    skipped: int = 0              # lines billed by an earlier run (resumed after them)
    retry_later: int = 0          # lines left for the next run (a transient error persisted)

    def summary(self) -> str:
        text = (f"{self.lines} line(s): {self.inserted} inserted, {self.duplicates} duplicate(s) ignored, "
                f"{len(self.errors)} error(s)")
        if self.skipped:
            text += f"; {self.skipped} line(s) billed by an earlier run skipped"
        if self.retry_later:
            text += f"; {self.retry_later} line(s) left for the next run"
        return text


def check_columns(columns) -> tuple[str, ...]:
    columns = tuple(c.strip().lower() for c in columns)
    unknown = [c for c in columns if c not in FS_CDR_COLUMNS]
    if unknown:
        raise SpoolError(f"unknown billing.fs_cdr column(s): {', '.join(unknown)}")
    if "uuid" not in columns:
        raise SpoolError("the column list must contain uuid (it makes re-imports idempotent)")
    if len(set(columns)) != len(columns):
        raise SpoolError("a column is listed twice")
    return columns


def columns_from_config(path: Path) -> tuple[str, ...]:
    """The column order of cdr_pg_csv.conf.xml's <schema> (column= or else var=)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SpoolError(f"cannot read {path}: {exc}") from exc
    fields = root.findall(".//schema/field")
    columns = [f.get("column") or f.get("var") for f in fields if f.get("var")]
    if not columns:
        raise SpoolError(f"{path} has no <schema><field var=.../> entries")
    return check_columns(columns)


def split_values(values: str) -> list[str | None]:
    """Split a mod_cdr_pg_csv VALUES list: 'quoted''text', bare words, null."""
    out: list[str | None] = []
    i, n = 0, len(values)
    while True:
        while i < n and values[i] in " \t":
            i += 1
        if i < n and values[i] == "'":
            i += 1
            buf = []
            while True:
                j = values.find("'", i)
                if j < 0:
                    raise LineError("unterminated quoted value")
                buf.append(values[i:j])
                if j + 1 < n and values[j + 1] == "'":
                    buf.append("'")
                    i = j + 2
                    continue
                i = j + 1
                break
            out.append("".join(buf))
            while i < n and values[i] in " \t":
                i += 1
        else:
            j = values.find(",", i)
            j = n if j < 0 else j
            word = values[i:j].strip()
            if not word:
                raise LineError("empty value (expected 'text', a number or null)")
            if "'" in word:
                raise LineError(f"malformed value {word!r}")
            out.append(None if word.lower() == "null" else word)
            i = j
        if i >= n:
            return out
        if values[i] != ",":
            raise LineError(f"unexpected {values[i]!r} after a value at character {i + 1}")
        i += 1


def parse_csv_line(line: str, columns: tuple[str, ...]) -> dict:
    values = split_values(line)
    if len(values) != len(columns):
        raise LineError(f"{len(values)} values for {len(columns)} columns")
    return dict(zip(columns, values))


def parse_sql_line(line: str) -> dict:
    match = SQL_LINE.match(line)
    if not match:
        raise LineError("not an INSERT INTO ... (columns) VALUES (...); statement")
    columns = [c.strip().strip('"').lower() for c in match.group(2).split(",")]
    bad = [c for c in columns if not COLUMN_NAME.match(c)]
    if bad:
        raise LineError(f"bad column name(s): {', '.join(bad)}")
    try:
        columns = check_columns(columns)
    except SpoolError as exc:
        raise LineError(str(exc)) from None
    values = split_values(match.group(3))
    if len(values) != len(columns):
        raise LineError(f"{len(values)} values for {len(columns)} columns")
    return dict(zip(columns, values))


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    if path.suffix.lower() in (".csv", ".sql"):
        return path.suffix.lower()[1:]
    raise SpoolError(f"cannot tell the format of {path.name}: name it .csv or .sql, or pass --format")


def _insert(row: dict) -> int:
    columns = list(row)  # checked against FS_CDR_COLUMNS: safe to name in SQL
    sql = (f"INSERT INTO billing.fs_cdr ({', '.join(columns)}) "
           f"VALUES ({', '.join(f':v{i}' for i in range(len(columns)))})")
    result = db.session.execute(text(sql), {f"v{i}": row[c] for i, c in enumerate(columns)})
    return result.rowcount


def _transient(exc: DBAPIError) -> bool:
    code = getattr(getattr(exc, "orig", None), "pgcode", None) or ""
    return code.startswith(TRANSIENT_PREFIXES)


def _customer_order(item: tuple[int, dict]):
    line_no, row = item
    customer = row.get("billing_customer_id")
    return (customer is None, int(customer) if customer and str(customer).isdigit() else 0, row["uuid"], line_no)


def _book(batch: list[tuple[int, dict]], result: ImportResult) -> int | None:
    """Insert one batch in customer order, each line under a savepoint, and commit it.
    Returns the number of the first line left for the next run (a transient error that
    did not go away), or None."""
    left: int | None = None
    for line_no, row in sorted(batch, key=_customer_order):
        for attempt in range(1, RETRIES + 1):
            savepoint = db.session.begin_nested()
            try:
                inserted = _insert(row)
                savepoint.commit()
            except DBAPIError as exc:
                savepoint.rollback()
                if _transient(exc):
                    if attempt < RETRIES:
                        time.sleep(0.05 * attempt)
                        continue
                    left = line_no if left is None else min(left, line_no)
                    result.retry_later += 1
                    break
                # a value PostgreSQL refuses: report the line (it stays in the file), keep going
                message = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                result.errors.append((line_no, message))
                break
            if inserted:
                result.inserted += 1
            else:
                result.duplicates += 1
            break
    db.session.commit()
    return left


@dataclass
class _Progress:
    """How far a spool file was billed: ``<file>.imported`` beside it."""
    offset: int = 0
    line: int = 0
    head: str = ""

    @staticmethod
    def path(spool: Path) -> Path:
        return spool.with_name(spool.name + ".imported")

    @classmethod
    def read(cls, spool: Path, head: str) -> "_Progress":
        try:
            offset, line, recorded = cls.path(spool).read_text().split(" ", 2)
            progress = cls(int(offset), int(line), recorded.strip())
        except (OSError, ValueError):
            return cls(head=head)
        if progress.head != head or progress.offset > spool.stat().st_size:
            return cls(head=head)            # another file under the same name: from the top
        return progress

    def write(self, spool: Path) -> None:
        target = self.path(spool)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(f"{self.offset} {self.line} {self.head}\n")
        tmp.replace(target)


def _fingerprint(handle) -> str:
    import hashlib

    first = handle.readline(4096)
    handle.seek(0)
    return hashlib.sha256(first).hexdigest()[:16] if first.endswith(b"\n") else ""


def import_spool(path: Path, fmt: str | None = None, columns: tuple[str, ...] | None = None,
                 from_start: bool = False) -> ImportResult:
    """Load a spool file from where the last run stopped; commits every BATCH lines so a
    long import keeps its progress."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt == "csv" and columns is None:
        columns = columns_from_config(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else DEFAULT_COLUMNS
    if columns is not None:
        columns = check_columns(columns)
    result = ImportResult()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SpoolError(f"cannot open {path}: {exc}") from exc
    with handle:
        head = _fingerprint(handle)
        progress = _Progress(head=head) if from_start or not head else _Progress.read(path, head)
        result.skipped = progress.line
        handle.seek(progress.offset)
        position, line_no = progress.offset, progress.line
        batch: list[tuple[int, dict]] = []
        batch_end = (position, line_no)
        stopped = False

        def flush() -> bool:
            """Book the batch; record the progress unless a line must be tried again."""
            nonlocal batch
            left = _book(batch, result) if batch else None
            batch = []
            if left is not None:
                return False
            progress.offset, progress.line = batch_end
            if head:
                progress.write(path)
            return True

        for raw in handle:
            if not raw.endswith(b"\n"):
                break                       # still being written by FreeSWITCH: next run
            position += len(raw)
            line_no += 1
            if raw.strip():
                result.lines += 1
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    row = parse_csv_line(line, columns) if fmt == "csv" else parse_sql_line(line)
                    if not row.get("uuid"):
                        raise LineError("uuid is empty")
                except UnicodeDecodeError as exc:
                    result.errors.append((line_no, f"not UTF-8 text ({exc.reason})"))
                except LineError as exc:
                    result.errors.append((line_no, str(exc)))
                else:
                    batch.append((line_no, row))
            batch_end = (position, line_no)
            if len(batch) >= BATCH and not flush():
                stopped = True
                break
        if not stopped:
            flush()
    result.errors.sort()
    return result
