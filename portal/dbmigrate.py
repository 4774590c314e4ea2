"""Versioned schema: numbered forward-only migrations plus repeatable procedures.

Scheme (documented for operators in sql/README.md):

* ``sql/migrations/NNNN_name.sql`` run once each, in number order, each in its own
  transaction, recorded in ``billing_meta.migrations`` with a checksum. A migration that
  was edited after it was applied, or a database that knows migrations this code does
  not, is refused with a clear message.
* ``sql/procedures/*.sql`` hold the stored procedures (``CREATE OR REPLACE``). After the
  migrations, every procedure file whose checksum differs from the recorded one is
  re-applied, in file-name order, in one transaction, followed by ``zz_grants.sql``.
* A session-level advisory lock makes two runners at once harmless: the second waits,
  then finds nothing left to do.

Plain psycopg2, no Flask, so bench scripts and tests can call it directly.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x62696C6C  # "bill": one advisory lock key for every schema runner
GRANTS_FILE = "zz_grants.sql"


class MigrationError(RuntimeError):
    """The database and the code disagree in a way a person must resolve."""


@dataclass(frozen=True)
class Script:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migration(Script):
    version: int


def load_migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    migrations = []
    for path in sorted((sql_dir / "migrations").glob("*.sql")):
        match = MIGRATION_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(name=path.name, sql=path.read_text(), version=int(match.group(1))))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a number: {sorted(versions)}")
    return migrations


def load_procedures(sql_dir: Path = SQL_DIR) -> list[Script]:
    return [Script(name=p.name, sql=p.read_text()) for p in sorted((sql_dir / "procedures").glob("*.sql"))]


BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS billing_meta;
CREATE TABLE IF NOT EXISTS billing_meta.migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS billing_meta.procedures (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass
class UpgradeResult:
    migrations_applied: list[str]
    procedures_applied: list[str]

    def summary(self) -> str:
        if not self.migrations_applied and not self.procedures_applied:
            return "database is up to date"
        parts = []
        if self.migrations_applied:
            parts.append("applied migrations: " + ", ".join(self.migrations_applied))
        if self.procedures_applied:
            parts.append("applied procedures: " + ", ".join(self.procedures_applied))
        return "; ".join(parts)


def upgrade(dsn: str, sql_dir: Path = SQL_DIR) -> UpgradeResult:
    """Bring the database at ``dsn`` up to the code's schema. Idempotent."""
    migrations = load_migrations(sql_dir)
    procedures = load_procedures(sql_dir)
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            return _upgrade_locked(conn, migrations, procedures)
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.close()


def _upgrade_locked(conn, migrations: list[Migration], procedures: list[Script]) -> UpgradeResult:
    conn.autocommit = False
    with conn, conn.cursor() as cur:
        # Quiet the NOTICEs of IF NOT EXISTS on every re-run.
        cur.execute("SET LOCAL client_min_messages = warning")
        cur.execute(BOOTSTRAP)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT version, name, checksum FROM billing_meta.migrations ORDER BY version")
        applied = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
        cur.execute("SELECT name, checksum FROM billing_meta.procedures")
        applied_procs = dict(cur.fetchall())

    known = {m.version: m for m in migrations}
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        names = ", ".join(applied[v][0] for v in unknown)
        raise MigrationError(
            f"the database is newer than this code: it has migrations this code does not know "
            f"({names}). Deploy the newer code instead of running an older one against it."
        )
    for version, (name, checksum) in applied.items():
        if known[version].checksum != checksum:
            raise MigrationError(
                f"migration {name} was edited after it was applied. Migrations are "
                f"forward-only: restore the file and add a new migration for the change."
            )

    done_migrations = []
    for migration in migrations:
        if migration.version in applied:
            continue
        with conn, conn.cursor() as cur:
            try:
                cur.execute(migration.sql)
            except psycopg2.Error as exc:
                raise MigrationError(f"migration {migration.name} failed: {exc}".strip()) from exc
            cur.execute(
                "INSERT INTO billing_meta.migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        done_migrations.append(migration.name)

    changed = [p for p in procedures if applied_procs.get(p.name) != p.checksum]
    done_procs = []
    if changed or done_migrations:
        # Grants depend on every function, so they follow any change.
        grants = [p for p in procedures if p.name == GRANTS_FILE]
        to_apply = [p for p in changed if p.name != GRANTS_FILE] + grants
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL check_function_bodies = off")
            cur.execute("SET LOCAL client_min_messages = warning")
            for proc in to_apply:
                try:
                    cur.execute(proc.sql)
                except psycopg2.Error as exc:
                    raise MigrationError(f"procedure file {proc.name} failed: {exc}".strip()) from exc
                cur.execute(
                    "INSERT INTO billing_meta.procedures (name, checksum) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
                    (proc.name, proc.checksum),
                )
                if proc in changed:
                    done_procs.append(proc.name)
    return UpgradeResult(done_migrations, done_procs)


def status(dsn: str, sql_dir: Path = SQL_DIR) -> list[tuple[str, str]]:
    """(name, state) of every migration: 'applied' or 'pending'."""
    migrations = load_migrations(sql_dir)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('billing_meta.migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return [(m.name, "pending") for m in migrations]
            cur.execute("SELECT version FROM billing_meta.migrations")
            applied = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    return [(m.name, "applied" if m.version in applied else "pending") for m in migrations]
