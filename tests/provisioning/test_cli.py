"""`flask --app wsgi provision load|dump` through the CLI runner."""
from __future__ import annotations

from sqlalchemy import select

from portal.models import Customer

from .conftest import example_without_hashing


def test_load_command_prints_what_it_did(cli, tmp_path, counts):
    path = tmp_path / "config.yaml"
    path.write_text(example_without_hashing())
    result = cli.invoke(args=["provision", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "customers: 1 created" in result.stdout and f"loaded {path}" in result.stdout
    again = cli.invoke(args=["provision", "load", str(path)])
    assert "customers: 1 unchanged" in again.stdout


def test_load_command_with_errors_fails_and_changes_nothing(cli, tmp_path, counts):
    path = tmp_path / "bad.yaml"
    path.write_text("weights: [{name: local}]\ncustomers: [{name: acme, endpoints: [{name: e, auth: ip, ip: x, permission: local}]}]\n")
    before = counts()
    result = cli.invoke(args=["provision", "load", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: customers[0].endpoints[0].ip: not a CIDR" in result.stderr
    assert "nothing was loaded (1 error)" in result.stderr
    assert counts() == before
    # References are checked once the file itself is valid.
    path.write_text(path.read_text().replace("ip: x", "ip: 10.0.0.0/8").replace("permission: local", "permission: gold"))
    result = cli.invoke(args=["provision", "load", str(path)])
    assert result.exit_code == 1
    assert "error: customers[0].endpoints[0].permission: unknown permission 'gold'" in result.stderr
    assert counts() == before


def test_dry_run_changes_nothing(cli, tmp_path, counts, db_session):
    path = tmp_path / "config.yaml"
    path.write_text(example_without_hashing())
    before = counts()
    result = cli.invoke(args=["provision", "load", "--dry-run", str(path)])
    assert result.exit_code == 0, result.output
    assert "customers: 1 created" in result.stdout and "dry run: nothing was changed" in result.stdout
    assert counts() == before
    assert db_session.scalar(select(Customer.id)) is None


def test_load_from_standard_input(cli, db_session):
    result = cli.invoke(args=["provision", "load", "-"], input="weights: [{name: local}, {name: mobile}]\n")
    assert result.exit_code == 0, result.output
    assert "weights: 2 created" in result.stdout


def test_missing_file_is_a_clear_error(cli, tmp_path):
    result = cli.invoke(args=["provision", "load", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml: cannot read the file" in result.stderr
