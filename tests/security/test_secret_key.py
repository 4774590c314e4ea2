"""Item 1: no built-in SECRET_KEY; a cookie forged with a published key signs nobody in."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from portal import create_app
from portal.config import Config, TestingConfig

from tests.conftest import ROOT

OLD_PUBLIC_KEYS = ["dev-only-not-secret", "testing", "bench"]


def test_create_app_without_a_key_refuses_to_start(monkeypatch, database_url):
    monkeypatch.delenv("SECRET_KEY", raising=False)

    class Production(Config):
        SECRET_KEY = None

    with pytest.raises(RuntimeError, match="SECRET_KEY is not set: export SECRET_KEY"):
        create_app(Production, DATABASE_URL=database_url)


@pytest.mark.parametrize("key", OLD_PUBLIC_KEYS + ["short-key"])
def test_create_app_with_a_published_or_short_key_refuses_to_start(database_url, key):
    with pytest.raises(RuntimeError, match="SECRET_KEY is"):
        create_app(Config, DATABASE_URL=database_url, SECRET_KEY=key)


def _forge(key: str, user_id: str) -> str:
    forger = Flask("forger")
    forger.secret_key = key
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps({"_user_id": user_id, "_fresh": True})


@pytest.mark.parametrize("key", OLD_PUBLIC_KEYS)
def test_a_session_forged_with_an_old_public_key_gives_nothing(app, client, people, key):
    admin = people["admin"]
    # The forgery itself works: signed with the portal's real key it is an admin session.
    client.set_cookie("session", _forge(app.secret_key, admin.get_id()))
    assert client.get("/admin/customers").status_code == 200
    client.delete_cookie("session")
    for user_id in (admin.get_id(), str(admin.id), f"{admin.id}.1"):
        client.set_cookie("session", _forge(key, user_id))
        response = client.get("/admin/customers")
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def _flask(args: list[str], env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env_extra
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_flask_run_without_a_key_refuses_to_start(database_url):
    result = _flask(["run", "--port", "0"], {"DATABASE_URL": database_url})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_commands_that_serve_nothing_run_without_a_key(database_url):
    """db status, provision, jobs from cron: no request is served, nothing they sign outlives them."""
    result = _flask(["db", "status"], {"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "0100_sessions_and_sign_ins.sql" in result.stdout


def test_testing_config_key_is_random_per_process():
    assert len(TestingConfig.SECRET_KEY) == 64 and TestingConfig.SECRET_KEY not in OLD_PUBLIC_KEYS
