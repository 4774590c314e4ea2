"""Rate deck import: CSV -> COPY into a temp table -> set-based validation, diff and
apply in SQL (sql/procedures/60_rate_import.sql). All or nothing: any error imports
nothing and is reported by line number and column.

Works on a psycopg2 connection so the same code runs inside a request (tests, small
decks) and in a background thread with its own connection (the portal's default).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

import psycopg2

from .. import background
from ..csvstream import Export

FIELDS = [
    ("prefix", "Prefix", True),
    ("rate", "Rate per minute", True),
    ("connect_fee", "Connect fee", False),
    ("min_duration", "Minimum duration (s)", False),
    ("increment", "Increment first/next", False),
    ("increment_first", "Increment first (s)", False),
    ("increment_next", "Increment next (s)", False),
    ("valid_from", "Valid from", False),
    ("valid_to", "Valid to", False),
    ("blocked", "Blocked", False),
    ("destination_name", "Destination name", False),
]
FIELD_NAMES = [f[0] for f in FIELDS]
# Header names recognised when guessing the mapping (lower case, spaces -> _).
ALIASES = {
    "prefix": {"prefix", "code", "dial_code", "dialcode", "digits"},
    "rate": {"rate", "price", "rate_per_minute", "per_minute", "cost"},
    "connect_fee": {"connect_fee", "connection_fee", "setup_fee", "connect"},
    "min_duration": {"min_duration", "minimum_duration", "min", "minimum"},
    "increment": {"increment", "increments", "billing_increment"},
    "increment_first": {"increment_first", "first_increment", "initial_increment", "first"},
    "increment_next": {"increment_next", "next_increment", "next"},
    "valid_from": {"valid_from", "effective_date", "effective_from", "start_date"},
    "valid_to": {"valid_to", "end_date", "expires", "valid_until"},
    "blocked": {"blocked", "block"},
    "destination_name": {"destination_name", "destination", "name", "country", "description"},
}
MAX_ERRORS = 100
# update: only the prefixes in the file change (the default: carriers send partial
# notices daily); replace: the file is the complete deck, other prefixes are closed.
MODES = ("update", "replace")
PROGRESS_EVERY = 50_000
PREVIEW_SAMPLE = 20


class RateImportError(ValueError):
    """The deck cannot be imported; `errors` lists (line, column, value, message)."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


@dataclass
class ImportOptions:
    mapping: dict[str, int]                 # field -> 0-based column index
    delimiter: str = ","
    has_header: bool = True
    default_increment: str = "60/60"
    weight_id: int | None = None            # create missing destinations with this class
    encoding: str = "utf-8-sig"
    mode: str = "update"                    # MODES

    def to_json(self) -> dict:
        return {"mapping": self.mapping, "delimiter": self.delimiter, "has_header": self.has_header,
                "default_increment": self.default_increment, "weight_id": self.weight_id,
                "encoding": self.encoding, "mode": self.mode}

    @classmethod
    def from_json(cls, data: dict) -> "ImportOptions":
        return cls(mapping={k: int(v) for k, v in (data.get("mapping") or {}).items()},
                   delimiter=data.get("delimiter", ","), has_header=bool(data.get("has_header", True)),
                   default_increment=data.get("default_increment", "60/60"),
                   weight_id=data.get("weight_id"), encoding=data.get("encoding", "utf-8-sig"),
                   mode=data.get("mode", "update"))

    def check(self) -> None:
        if self.mode not in MODES:
            raise RateImportError(f"unknown import mode {self.mode!r}: update (only the prefixes in the file) "
                                  "or replace (the file is the complete deck)")
        missing = [label for name, label, required in FIELDS if required and name not in self.mapping]
        if missing:
            raise RateImportError("map a column to: " + ", ".join(missing))
        if "increment" in self.mapping and ("increment_first" in self.mapping or "increment_next" in self.mapping):
            raise RateImportError("map either the increment column (first/next) or the first and next columns, not both")
        first, _, nxt = self.default_increment.partition("/")
        if not (first.isdigit() and nxt.isdigit() and int(first) > 0 and int(nxt) > 0):
            raise RateImportError("the default increment is written first/next in seconds, e.g. 60/60")
        used = {}
        for name, column in self.mapping.items():
            if name not in FIELD_NAMES:
                raise RateImportError(f"unknown field {name}")
            if column in used:
                raise RateImportError(f"column {column + 1} is mapped twice ({used[column]} and {name})")
            used[column] = name

    @property
    def increments(self) -> tuple[int, int]:
        first, _, nxt = self.default_increment.partition("/")
        return int(first), int(nxt)


@dataclass
class Progress:
    """Receives (phase, processed_lines); the default does nothing."""
    callback: Callable[[str, int], None] | None = None

    def __call__(self, phase: str, processed: int = 0) -> None:
        if self.callback:
            self.callback(phase, processed)


@dataclass
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict]] = field(default_factory=dict)
    rows: int = 0


# ----------------------------------------------------------------------------- files

def upload_dir(instance_path: str) -> str:
    path = os.path.join(instance_path, "rate_imports")
    os.makedirs(path, exist_ok=True)
    return path


def store_upload(stream, instance_path: str) -> str:
    """Save an uploaded file under the instance folder; returns its path."""
    path = os.path.join(upload_dir(instance_path), f"{uuid.uuid4().hex}.csv")
    with open(path, "wb") as out:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
    return path


def sniff_delimiter(path: str, encoding: str = "utf-8-sig") -> str:
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        sample = f.read(8192)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def head_rows(path: str, options_delimiter: str, encoding: str = "utf-8-sig", n: int = 10) -> list[list[str]]:
    """The first n records of the file (header included), for the mapping page."""
    rows = []
    try:
        with open(path, encoding=encoding, newline="") as f:
            for row in csv.reader(f, delimiter=options_delimiter):
                if row:
                    rows.append(row)
                if len(rows) >= n:
                    break
    except UnicodeDecodeError as e:
        raise RateImportError(f"the file is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise RateImportError(f"not a CSV file: {e}") from None
    return rows


def guess_mapping(header: list[str]) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        for fieldname, names in ALIASES.items():
            if key in names and fieldname not in mapping:
                mapping[fieldname] = index
                break
    if "increment" in mapping and ("increment_first" in mapping or "increment_next" in mapping):
        mapping.pop("increment_first", None)
        mapping.pop("increment_next", None)
    return mapping


# ----------------------------------------------------------------------------- staging

def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _IterFile(io.RawIOBase):
    """A read()-able file over an iterator of text chunks, for copy_expert."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks).encode()
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


DECIMAL_RE = re.compile(r"[0-9]{1,8}(\.[0-9]{1,6})?")
INT_RE = re.compile(r"[0-9]{1,6}")
INCREMENT_RE = re.compile(r"0*([1-9][0-9]{0,4})/0*([1-9][0-9]{0,4})")
SECONDS_RE = re.compile(r"0*([1-9][0-9]{0,4})")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?([+-][0-9]{2}(:?[0-9]{2})?|Z)?")
BLOCKED = {"yes": "t", "y": "t", "true": "t", "t": "t", "1": "t", "blocked": "t",
           "no": "f", "n": "f", "false": "f", "f": "f", "0": "f", "": "f"}
MESSAGES = {
    "prefix": "a prefix is 1 to 20 digits (an optional leading + is dropped)",
    "rate": "a rate is a decimal number like 0.0125 (at most 6 decimals, no sign)",
    "connect_fee": "a connect fee is a decimal number like 0.05 (at most 6 decimals)",
    "min_duration": "a minimum duration is whole seconds (0 to 999999)",
    "increment": "an increment is written first/next in seconds, e.g. 60/60 or 30/6",
    "increment_first": "the first increment is whole seconds, at least 1",
    "increment_next": "the next increment is whole seconds, at least 1",
    "valid_from": "not a date (write YYYY-MM-DD or YYYY-MM-DD HH:MM)",
    "valid_to": "not a date (write YYYY-MM-DD or YYYY-MM-DD HH:MM)",
    "blocked": "blocked is one of yes/no, true/false, 1/0",
    "destination_name": "a destination name is at most 200 characters",
}
STAGE_COLUMNS = ["line", "prefix", "rate", "connect_fee", "min_duration", "increment_first", "increment_next",
                 "valid_from", "valid_to", "blocked", "destination_name"]


def _utc_date(text: str) -> str | None:
    """The date as timestamptz text (UTC when it names no offset; the pages say dates are UTC), None if not a date."""
    if not DATE_RE.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).isoformat()


def _row_converter(m: dict[str, int], defaults: tuple[str, str, str]):
    """A function (line, record, errors) -> COPY line of pg_temp.rate_import_stage.

    Format checks happen here, while the file is read anyway; what needs the database
    (duplicates, dates against the effective date) is checked in SQL afterwards. Built
    once per file so the per-line work is only index lookups and a few matches."""
    i_prefix, i_rate = m["prefix"], m["rate"]
    i_fee, i_min, i_inc = m.get("connect_fee"), m.get("min_duration"), m.get("increment")
    i_first, i_next = m.get("increment_first"), m.get("increment_next")
    i_from, i_to, i_blocked, i_name = m.get("valid_from"), m.get("valid_to"), m.get("blocked"), m.get("destination_name")
    decimal, integer, increment, seconds = DECIMAL_RE.fullmatch, INT_RE.fullmatch, INCREMENT_RE.fullmatch, SECONDS_RE.fullmatch
    null_tail = "\t\\N" * (len(STAGE_COLUMNS) - 2) + "\n"

    def convert(line: int, record: list[str], errors: list[dict]) -> str | None:
        bad = None
        prefix = record[i_prefix].strip()
        if prefix[:1] == "+":
            prefix = prefix[1:]
        if not (prefix.isdigit() and prefix.isascii() and len(prefix) <= 20):
            bad = [("prefix", prefix)]
        rate = record[i_rate].strip()
        if not decimal(rate):
            bad = (bad or []) + [("rate", rate)]
        fee = record[i_fee].strip() or "0" if i_fee is not None else "0"
        if i_fee is not None and not decimal(fee):
            bad = (bad or []) + [("connect_fee", fee)]
        minimum = record[i_min].strip() or "0" if i_min is not None else "0"
        if i_min is not None and not integer(minimum):
            bad = (bad or []) + [("min_duration", minimum)]
        first, nxt = defaults[0], defaults[1]
        if i_inc is not None and (value := record[i_inc].strip()):
            if found := increment(value):
                first, nxt = found.group(1), found.group(2)
            else:
                bad = (bad or []) + [("increment", value)]
        if i_first is not None and (value := record[i_first].strip()):
            if found := seconds(value):
                first = found.group(1)
            else:
                bad = (bad or []) + [("increment_first", value)]
        if i_next is not None and (value := record[i_next].strip()):
            if found := seconds(value):
                nxt = found.group(1)
            else:
                bad = (bad or []) + [("increment_next", value)]
        valid_from, valid_to = defaults[2], "\\N"
        if i_from is not None and (value := record[i_from].strip()):
            if not (valid_from := _utc_date(value)):
                bad = (bad or []) + [("valid_from", value)]
        if i_to is not None and (value := record[i_to].strip()):
            if not (valid_to := _utc_date(value)):
                bad = (bad or []) + [("valid_to", value)]
        blocked = "f"
        if i_blocked is not None:
            value = record[i_blocked].strip()
            if (blocked := BLOCKED.get(value.lower())) is None:
                bad = (bad or []) + [("blocked", value)]
        name = "\\N"
        if i_name is not None and (value := record[i_name].strip()):
            if len(value) > 200:
                bad = (bad or []) + [("destination_name", value[:40])]
            name = _copy_escape(value) if ("\\" in value or "\t" in value or "\n" in value or "\r" in value) else value
        if bad:
            for column, value in bad:
                if len(errors) < MAX_ERRORS:
                    errors.append({"line": line, "column": column, "value": value, "message": MESSAGES[column]})
            if bad[0][0] == "prefix":
                return None
            # Staged with its prefix only, so a duplicate of it is still reported.
            return f"{line}\t{prefix}{null_tail}"
        return f"{line}\t{prefix}\t{rate}\t{fee}\t{minimum}\t{first}\t{nxt}\t{valid_from}\t{valid_to}\t{blocked}\t{name}\n"

    return convert


def _file_records(path: str, options: ImportOptions) -> Iterator[tuple[int, list[str]]]:
    """(line number, record) of each data line of the CSV file (the header skipped)."""
    with open(path, encoding=options.encoding, newline="") as f:
        reader = csv.reader(f, delimiter=options.delimiter)
        count = 0
        try:
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                count += 1
                if count == 1 and options.has_header:
                    continue
                yield reader.line_num, record
        except UnicodeDecodeError as e:
            raise RateImportError(f"line {reader.line_num + 1}: the file is not UTF-8 text ({e.reason})",
                                  [{"line": reader.line_num + 1, "column": "", "value": "", "message": "not UTF-8 text"}]) from None
        except csv.Error as e:
            raise RateImportError(f"line {reader.line_num}: {e}",
                                  [{"line": reader.line_num, "column": "", "value": "", "message": str(e)}]) from None


def _copy_lines(records: Iterable[tuple[int, list[str]]], options: ImportOptions, effective: datetime,
                errors: list[dict], progress: Progress) -> Iterator[str]:
    """Typed COPY lines from (line, record) pairs; bad records are reported in `errors`, not copied."""
    m = options.mapping
    needed = max(m.values()) + 1
    first, nxt = options.increments
    convert = _row_converter(m, (str(first), str(nxt), effective.isoformat()))
    out: list[str] = []
    count = 0
    for line, record in records:
        count += 1
        if len(record) < needed:
            if len(errors) < MAX_ERRORS:
                missing = min((c, name) for name, c in m.items() if c >= len(record))[1]
                errors.append({"line": line, "column": missing, "value": "",
                               "message": f"the line has {len(record)} columns; {missing} is column {m[missing] + 1}"})
            continue
        text = convert(line, record, errors)
        if text is not None:
            out.append(text)
        if len(out) >= 5000:
            yield "".join(out)
            out.clear()
        if count % PROGRESS_EVERY == 0:
            progress("reading", count)
    if out:
        yield "".join(out)


def stage(cur, source, options: ImportOptions, effective: datetime, progress: Progress) -> int:
    """COPY the deck, checked and typed, into pg_temp.rate_import_stage, then run the
    checks that need the database (duplicates, dates against the effective date).
    `source` is the path of a CSV file, or (line, record) pairs (import_records).

    Raises RateImportError listing every problem (up to MAX_ERRORS) by line and column.
    """
    options.check()
    cur.execute("DROP TABLE IF EXISTS pg_temp.rate_import_stage")
    cur.execute("""CREATE TEMP TABLE rate_import_stage (
                       line integer, prefix text, rate numeric(14, 6), connect_fee numeric(14, 6),
                       min_duration integer, increment_first integer, increment_next integer,
                       valid_from timestamptz, valid_to timestamptz, blocked boolean, destination_name text)""")
    errors: list[dict] = []
    progress("reading", 0)
    cur.copy_expert(f"COPY pg_temp.rate_import_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN",
                    _IterFile(_copy_lines(_file_records(source, options) if isinstance(source, str) else source,
                                          options, effective, errors, progress)), size=1 << 16)
    progress("validating", 0)
    cur.execute("SELECT line, col, value, message FROM billing_private.rate_import_validate(%s, %s, %s)",
                (effective, "valid_from" in options.mapping or "valid_to" in options.mapping, MAX_ERRORS))
    errors += [{"line": line, "column": col, "value": value, "message": message}
               for line, col, value, message in cur.fetchall()]
    if errors:
        errors.sort(key=lambda e: e["line"])
        errors = errors[:MAX_ERRORS]
        first = errors[0]
        raise RateImportError(
            f"{len(errors)}{'+' if len(errors) >= MAX_ERRORS else ''} error(s); nothing was imported. "
            f"First: line {first['line']}, column {first['column']}: {first['message']}", errors)
    cur.execute("ANALYZE pg_temp.rate_import_stage")
    cur.execute("SELECT count(*) FROM pg_temp.rate_import_stage")
    rows = cur.fetchone()[0]
    if rows == 0:
        raise RateImportError("the file has no rate lines; nothing was imported")
    return rows


def _samples(cur) -> dict[str, list[dict]]:
    cur.execute("""
        SELECT change, prefix, line, old_rate, new_rate, old_increment, new_increment
          FROM (SELECT d.*, row_number() OVER (PARTITION BY change ORDER BY prefix) AS n
                  FROM pg_temp.rate_import_diff d WHERE change NOT IN ('unchanged', 'kept')) x
         WHERE n <= %s ORDER BY change, prefix""", (PREVIEW_SAMPLE,))
    samples: dict[str, list[dict]] = {}
    for change, prefix, line, old_rate, new_rate, old_inc, new_inc in cur.fetchall():
        samples.setdefault(change, []).append({
            "prefix": prefix, "line": line,
            "old_rate": None if old_rate is None else str(old_rate),
            "new_rate": None if new_rate is None else str(new_rate),
            "old_increment": old_inc, "new_increment": new_inc})
    return samples


def _run(conn, target: str, owner_id: int, path: str, options: ImportOptions, effective: datetime,
         progress: Progress, apply: bool, confirm_removed: int | None = None) -> ImportResult:
    """Stage, diff and (when `apply`) apply inside a savepoint; preview always rolls back.

    A replace that would close prefixes applies only when `confirm_removed` is exactly
    how many it closes now (checked in the same transaction as the apply, so a deck
    whose count changed since the preview is refused, not applied)."""
    savepoint = "rate_import_apply" if apply else "rate_import_preview"
    with conn.cursor() as cur:
        cur.execute(f"SAVEPOINT {savepoint}")
        try:
            result = ImportResult()
            result.rows = stage(cur, path, options, effective, progress)
            progress("comparing", result.rows)
            cur.execute("SELECT change, n FROM billing_private.rate_import_diff(%s, %s, %s, %s)",
                        (target, owner_id, effective, options.mode))
            result.counts = {change: int(n) for change, n in cur.fetchall()}
            result.samples = _samples(cur)
            removed = result.counts.get("removed", 0)
            if apply and removed and confirm_removed != removed:
                raise RateImportError(
                    f"replace mode would close {removed} prefix(es) that are not in the file, and "
                    f"{'nothing was confirmed' if confirm_removed is None else f'{confirm_removed} were confirmed'}; "
                    "nothing was imported. Preview again and confirm the number, or import in update mode.",
                    [{"line": 0, "column": "", "value": str(removed),
                      "message": f"replace mode closes {removed} prefix(es): confirm that number"}])
            if apply:
                progress("applying", result.rows)
                cur.execute("SELECT change, n FROM billing_private.rate_import_apply(%s, %s, %s, %s, %s)",
                            (target, owner_id, effective, options.mode, options.weight_id))
                result.counts = {change: int(n) for change, n in cur.fetchall()}
                cur.execute("DROP TABLE IF EXISTS pg_temp.rate_import_stage, "
                            "pg_temp.rate_import_current, pg_temp.rate_import_diff")
                cur.execute(f"RELEASE SAVEPOINT {savepoint}")
            else:
                cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                cur.execute(f"RELEASE SAVEPOINT {savepoint}")
            return result
        except psycopg2.Error as e:
            cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            message = (e.diag.message_primary or str(e)).strip()
            raise RateImportError(f"nothing was imported: {message}",
                                  [{"line": 0, "column": "", "value": "", "message": message}]) from None
        except RateImportError:
            cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            raise


def preview(conn, target: str, owner_id: int, path: str, options: ImportOptions, effective: datetime,
            progress: Progress | None = None) -> ImportResult:
    """What the import would change (counts and samples per change); changes nothing."""
    return _run(conn, target, owner_id, path, options, effective, progress or Progress(), apply=False)


def apply(conn, target: str, owner_id: int, path: str, options: ImportOptions, effective: datetime,
          progress: Progress | None = None, confirm_removed: int | None = None) -> ImportResult:
    """Import the deck in the caller's transaction (the caller commits). In replace
    mode, `confirm_removed` must be the number of prefixes it closes (see _run)."""
    return _run(conn, target, owner_id, path, options, effective, progress or Progress(), apply=True,
                confirm_removed=confirm_removed)


def import_file(conn, target: str, owner_name: str, path: str, effective: datetime, *, mode: str = "update",
                mapping: dict[str, int] | None = None, delimiter: str | None = None, has_header: bool = True,
                default_increment: str = "60/60", confirm_removed: int | None = None,
                dry_run: bool = False) -> ImportResult:
    """Import a deck file into the ratecard or provider named `owner_name`: the entry
    point for scripts and a REST API (the pages run the same preview and apply).

    `mode` is 'update' (only the file's prefixes change; the default) or 'replace' (the
    file is the complete deck: the owner's other prefixes are closed at `effective`).
    A replace that would close prefixes needs `confirm_removed` equal to how many it
    closes (the number a preview or `dry_run=True` reports as counts['removed']), the
    API's twin of the page's typed confirmation; otherwise nothing is imported. The
    mapping is guessed from the header when not given. Runs in the caller's
    transaction: the caller commits (or rolls back a dry run's nothing)."""
    if target not in ("ratecard", "provider"):
        raise RateImportError(f"unknown import target {target!r}: ratecard or provider")
    table = "ratecards" if target == "ratecard" else "providers"
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM billing.{table} WHERE name = %s", (owner_name,))  # table from the fixed pair
        row = cur.fetchone()
    if row is None:
        raise RateImportError(f"there is no {target} named {owner_name!r}")
    delimiter = delimiter or sniff_delimiter(path)
    if mapping is None:
        head = head_rows(path, delimiter, n=1)
        mapping = guess_mapping(head[0]) if head and has_header else {"prefix": 0, "rate": 1}
    options = ImportOptions(mapping=mapping, delimiter=delimiter, has_header=has_header,
                            default_increment=default_increment, mode=mode)
    if dry_run:
        return preview(conn, target, row[0], path, options, effective)
    return apply(conn, target, row[0], path, options, effective, confirm_removed=confirm_removed)


RECORD_FIELDS = ["prefix", "rate", "connect_fee", "min_duration", "increment", "valid_from", "valid_to", "blocked",
                 "destination_name"]


def import_records(conn, target: str, owner_id: int, records: list[dict], effective: datetime, *,
                   mode: str = "update", confirm_removed: int | None = None, dry_run: bool = False,
                   default_increment: str = "60/60") -> ImportResult:
    """Import rates given as records ({prefix, rate, connect_fee, min_duration,
    increment, valid_from, valid_to, blocked, destination_name}, values as text the way
    a deck file writes them) with the deck import's checks, diff and all-or-nothing
    apply: the REST API's bulk upsert. Errors name the record by its 1-based position
    as `line`. Runs in the caller's transaction (the caller commits)."""
    if target not in ("ratecard", "provider"):
        raise RateImportError(f"unknown import target {target!r}: ratecard or provider")

    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    rows = [(n, [text(record.get(name)) for name in RECORD_FIELDS]) for n, record in enumerate(records, start=1)]
    options = ImportOptions(mapping={name: i for i, name in enumerate(RECORD_FIELDS)}, has_header=False,
                            default_increment=default_increment, mode=mode)
    if dry_run:
        return _run(conn, target, owner_id, rows, options, effective, Progress(), apply=False)
    return _run(conn, target, owner_id, rows, options, effective, Progress(), apply=True,
                confirm_removed=confirm_removed)


# ----------------------------------------------------------------------------- jobs

def _job_update(cur, job_id: int, **values) -> None:
    sets = ", ".join(f"{k} = %s" for k in values)
    params = [json.dumps(v) if k in ("errors", "summary") else v for k, v in values.items()]
    cur.execute(f"UPDATE billing.rate_imports SET {sets} WHERE id = %s", (*params, job_id))


def _job_row(cur, job_id: int):
    cur.execute("SELECT target, coalesce(ratecard_id, provider_id), stored_path, options, effective_from "
                "FROM billing.rate_imports WHERE id = %s", (job_id,))
    row = cur.fetchone()
    if row is None:
        raise RateImportError(f"import {job_id} does not exist")
    return row


def summary_of(result: ImportResult) -> dict:
    return {"counts": result.counts, "samples": result.samples, "rows": result.rows}


def run_job_in(conn, job_id: int, status_conn=None) -> None:
    """Run import job `job_id` on `conn` (committed by the caller on success).

    Progress and the final status go through `status_conn` (autocommit, so the page
    sees them while the import's own transaction is open), or through `conn` itself.
    """
    status_conn = status_conn or conn
    with conn.cursor() as cur:
        target, owner_id, path, options, effective = _job_row(cur, job_id)

    def report(phase: str, processed: int) -> None:
        with status_conn.cursor() as scur:
            _job_update(scur, job_id, phase=phase, processed_lines=processed)

    with status_conn.cursor() as scur:
        _job_update(scur, job_id, status="running", phase="starting", processed_lines=0,
                    started_at=datetime.now(timezone.utc), errors=[])
    try:
        result = apply(conn, target, owner_id, path, ImportOptions.from_json(options), effective, Progress(report),
                       confirm_removed=options.get("confirm_removed"))
    except RateImportError as e:
        with status_conn.cursor() as scur:
            _job_update(scur, job_id, status="failed", phase=str(e), finished_at=datetime.now(timezone.utc),
                        errors=e.errors or [{"line": 0, "column": "", "value": "", "message": str(e)}])
        return
    with conn.cursor() as cur:
        _job_update(cur, job_id, status="done", phase="done", processed_lines=result.rows, total_lines=result.rows,
                    finished_at=datetime.now(timezone.utc), summary=summary_of(result))


def start_background(dsn: str, job_id: int) -> threading.Thread:
    """Run the job in a thread with its own connections (import + status)."""

    def work(conn, status_conn) -> bool:
        run_job_in(conn, job_id, status_conn)
        return True

    def failed(status_conn, exc: Exception) -> None:
        with status_conn.cursor() as scur:
            _job_update(scur, job_id, status="failed", phase=f"internal error: {exc}",
                        finished_at=datetime.now(timezone.utc))

    return background.start(dsn, f"rate-import-{job_id}", work, failed, reraise=True)


# ----------------------------------------------------------------------------- export

EXPORT_COLUMNS = ["prefix", "rate", "connect_fee", "min_duration", "increment", "valid_from", "valid_to", "blocked"]


def export(target: str, owner_id: int, at: datetime | None = None) -> Export:
    """The owner's rates valid at `at` (now) as a CSV export that imports back unchanged."""
    table, owner = {"ratecard": ("rates", "ratecard_id"), "provider": ("provider_rates", "provider_id")}[target]
    # table/owner come from the fixed dict above, never from the caller.
    return Export(EXPORT_COLUMNS, f"""
        SELECT prefix, rate, connect_fee, min_duration, increment_first || '/' || increment_next,
               to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"'),
               to_char(valid_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"'),
               CASE WHEN blocked THEN 'yes' ELSE 'no' END
          FROM billing.{table}
         WHERE {owner} = %(owner)s
           AND (valid_from IS NULL OR valid_from <= coalesce(%(at)s, now()))
           AND (valid_to IS NULL OR valid_to > coalesce(%(at)s, now()))
         ORDER BY prefix""", {"owner": owner_id, "at": at})


def export_rows(conn, target: str, owner_id: int, at: datetime | None = None, batch: int = 2000) -> Iterator[str]:
    """The CSV text of export(), streamed with a server-side cursor."""
    return export(target, owner_id, at).text(conn, batch)
