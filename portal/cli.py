"""Core commands (CONTRACT 4): db upgrade/status, create-admin."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import audit, dbmigrate
from .extensions import db
from .models import User
from .security import MIN_PASSWORD_LENGTH, hash_password

db_cli = AppGroup("db", help="Database schema: migrations and stored procedures.")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply pending migrations and changed stored procedures (idempotent)."""
    try:
        result = dbmigrate.upgrade(current_app.config["DATABASE_URL"])
    except dbmigrate.MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())


@db_cli.command("status")
def db_status():
    """List migrations and whether each is applied."""
    for name, state in dbmigrate.status(current_app.config["DATABASE_URL"]):
        click.echo(f"{state:8} {name}")


@click.command("create-admin")
@click.option("--email", required=True, help="Login e-mail of the back-office user.")
@click.option("--password", required=True, help=f"At least {MIN_PASSWORD_LENGTH} characters.")
@click.option("--reset-two-factor", is_flag=True,
              help="Also turn off the admin's two-factor sign-in (a lost phone and lost recovery codes).")
def create_admin(email: str, password: str, reset_two_factor: bool):
    """Create a back-office user, or reset the password of an existing one."""
    email = email.strip().lower()
    if "@" not in email:
        raise click.ClickException(f"{email!r} is not an e-mail address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        db.session.add(User(email=email, password_hash=hash_password(password), role="admin"))
        click.echo(f"created admin {email}")
    elif user.role != "admin":
        raise click.ClickException(f"{email} is a {user.role} user; use another e-mail for the admin")
    else:
        user.password_hash = hash_password(password)
        user.active = True
        click.echo(f"admin {email} exists: password reset")
        if reset_two_factor and user.two_factor_enabled:
            from .auth import two_factor

            two_factor.disable(user)
            audit.record("two_factor_reset", "staff", user.id, actor="cli", email=email)
            click.echo(f"two-factor sign-in of {email} turned off")
    db.session.commit()


def register_cli(app):
    app.cli.add_command(db_cli)
    app.cli.add_command(create_admin)
