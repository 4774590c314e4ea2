"""CLI: `flask --app wsgi provision load FILE|-`, `provision dump`, `seed-demo` (CONTRACT 4)."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from .dumper import dump_text
from .errors import ProvisioningError
from .loader import load_file, load_text

provision_cli = AppGroup("provision", help="Configuration as code: load and dump the provisioning YAML.")
MAX_ERRORS_SHOWN = 50


def _fail(exc: ProvisioningError) -> None:
    shown = exc.errors[:MAX_ERRORS_SHOWN]
    for line in shown:
        click.echo(f"error: {line}", err=True)
    if len(exc.errors) > len(shown):
        click.echo(f"error: ... and {len(exc.errors) - len(shown)} more", err=True)
    raise click.ClickException(f"nothing was loaded ({len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''})")


@provision_cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Check and apply, then roll back: show what would change.")
def provision_load(file: str, dry_run: bool):
    """Create or update everything in FILE (YAML; '-' reads standard input). One
    transaction: a file with any error changes nothing."""
    try:
        if file == "-":
            summary = load_text(sys.stdin.read(), source="<stdin>", base_dir=Path.cwd(), actor="cli", commit=not dry_run)
        else:
            summary = load_file(file, actor="cli", commit=not dry_run)
    except ProvisioningError as exc:
        _fail(exc)
    if dry_run:
        from ..extensions import db

        db.session.rollback()
    for line in summary.lines():
        click.echo(line)
    click.echo("dry run: nothing was changed" if dry_run else f"loaded {file}")


@provision_cli.command("dump")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of standard output.")
def provision_dump(output: str | None):
    """Print the configuration in the provisioning format (loadable with `provision load`)."""
    content = dump_text()
    if output:
        Path(output).write_text(content, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(content, nl=False)


@click.command("seed-demo")
@click.option("--force", is_flag=True, help="Add the demo even if the database holds other customers.")
def seed_demo(force: bool):
    """Load a small realistic demo data set (idempotent: run it at every start)."""
    from .demo import DemoRefused, seed

    try:
        result = seed(force=force)
    except DemoRefused as exc:
        click.echo(str(exc))
        return
    except ProvisioningError as exc:
        _fail(exc)
    for line in result.lines():
        click.echo(line)


def register_cli(app):
    app.cli.add_command(provision_cli)
    app.cli.add_command(seed_demo)
