"""Fixtures of the provisioning tests: load YAML text from a temporary file, count rows."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from portal.provisioning import load_file

DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = DATA / "example.yaml"

# Every table a load may write: a failed load must leave all of them as they were.
TABLES = ("settings", "weights", "permissions", "permission_weights", "destinations", "ratecards", "rates",
          "providers", "gateways", "provider_rates", "customers", "customer_ratecards", "routing_rules",
          "routing_rule_providers", "endpoints", "users", "ledger", "audit_log")


@pytest.fixture()
def load(db_session, tmp_path):
    """load(yaml_text, **files): write the text (dedented) and extra files, then load it."""

    def _load(content: str, **files: str):
        for name, body in files.items():
            (tmp_path / name).write_text(textwrap.dedent(body))
        path = tmp_path / "config.yaml"
        path.write_text(textwrap.dedent(content))
        return load_file(path)

    return _load


@pytest.fixture()
def counts(pg):
    """counts() -> {table: rows} plus the settings row's content, to prove nothing changed."""

    def _counts():
        with pg.cursor() as cur:
            out = {}
            for table in TABLES:
                cur.execute(f"SELECT count(*) FROM billing.{table}")
                out[table] = cur.fetchone()[0]
            cur.execute("SELECT row_to_json(s)::text FROM billing.settings s")
            out["settings_row"] = cur.fetchone()[0]
            cur.execute("SELECT coalesce(sum(balance), 0) FROM billing.customers")
            out["balances"] = cur.fetchone()[0]
        return out

    return _counts


def example_without_hashing() -> str:
    """The PROVISIONING.md example with its portal password given as a precomputed hash
    (argon2 costs half a second per run; most tests do not need it)."""
    from portal.provisioning.demo import DEMO_PASSWORD_HASHES

    text = EXAMPLE.read_text()
    old = '{email: ops@acme.example, password: "change-me-please"}'
    assert old in text
    return text.replace(old, "{email: ops@acme.example, password_hash: '%s'}" % DEMO_PASSWORD_HASHES["ops@acme.example"])


@pytest.fixture()
def base(load):
    """The example loaded (a user with a known hash instead of a password)."""
    return load(example_without_hashing())


@pytest.fixture()
def other_db(template_db):
    """A second committed database cloned from the migrated template (fresh_db's twin)."""
    import uuid

    from tests.conftest import PREFIX, create_database, drop_database

    name = f"{PREFIX}_p{uuid.uuid4().hex[:8]}"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)
