"""Fixtures of the security tests (issue 12): each test repeats an attack of the review."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from flask import g
from flask.testing import FlaskClient

from portal import security
from tests import factories
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

CUSTOMER_EMAIL = "ops@acme.example"
OTHER_EMAIL = "ops@other.example"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Real argon2id with minimal cost (these tests sign in and fail to sign in a lot)."""
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture()
def people(db_session):
    """An admin, two customers with one portal user each."""
    admin = factories.user(ADMIN_EMAIL, ADMIN_PASSWORD, role="admin")
    acme = factories.customer("acme", email="billing@acme.example")
    other = factories.customer("other")
    return {"admin": admin, "customer": factories.user(CUSTOMER_EMAIL, CUSTOMER_PASSWORD, customer=acme),
            "other": factories.user(OTHER_EMAIL, CUSTOMER_PASSWORD, customer=other), "acme": acme}


class FreshClient(FlaskClient):
    """A test client whose every request finds its user from its cookies alone. The test's
    database fixture keeps one app context open for the whole test, and Flask-Login caches
    the user in `g` of that context: without this, the user of the previous request would
    be reused and a revoked cookie could not be seen failing."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture()
def new_client(app, db_session):
    """A factory of independent browsers (each with its own cookies)."""
    return lambda: FreshClient(app, app.response_class, use_cookies=True)


@pytest.fixture()
def client(new_client):
    return new_client()


def sign_in(client, email: str, password: str, remember: bool = False, ip: str = "192.0.2.1"):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": ip})


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None
