"""Fixtures of the shared domain services: the two-customer world of the self-care
tests (A is a customer looked at by staff and by itself, B the neighbour whose data
must stay out of A's scope), and clients of both audiences.

One test signs in one audience only: the test's app context is shared by its
requests, and Flask-Login keeps the signed-in user in it."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD, login
from tests.selfcare.conftest import A_EMAIL, build_world


@pytest.fixture()
def world(db_session):
    return build_world()


@pytest.fixture()
def customer_client(app, world):
    client = app.test_client()
    login(client, A_EMAIL, CUSTOMER_PASSWORD)
    return client


@pytest.fixture()
def staff_client(app, admin_user):
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client
