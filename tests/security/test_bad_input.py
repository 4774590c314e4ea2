"""Item 6: bad input answers 400 with a message, never 500; without its database the
portal answers 503 with Retry-After and a page that needs no database."""
from __future__ import annotations

import pytest

from portal import create_app
from portal.config import TestingConfig
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, FreshClient, sign_in

HUGE_PAGE = "99999999999999999999999"


@pytest.fixture()
def admin(new_client, people):
    browser = new_client()
    assert sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302
    return browser


@pytest.fixture()
def customer(new_client, people):
    browser = new_client()
    assert sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD).status_code == 302
    return browser


def admin_get_routes(app) -> list[str]:
    return sorted(r.rule for r in app.url_map.iter_rules()
                  if r.endpoint.startswith("admin.") and "GET" in r.methods and not r.arguments)


def _body(response) -> str:
    return (b"".join(response.response) if response.is_streamed else response.data).decode()


def test_nul_in_the_query_string_is_400_on_every_admin_page(app, admin):
    routes = admin_get_routes(app)
    assert len(routes) >= 20
    for url in routes:
        response = admin.get(url + "?q=%00")
        assert response.status_code == 400, f"GET {url}?q=%00 answered {response.status_code}"
        assert "NUL character" in _body(response)
    assert admin.get("/admin/customers?status=%00active").status_code == 400
    assert admin.get("/admin/customers?q=acme").status_code == 200


@pytest.mark.parametrize("url", ["/my/rates?q=%00", "/my/rates.csv?q=%00", "/my/cdrs?prefix=%00",
                                 "/my/cdrs.csv?prefix=33%00", "/my/ledger?kind=%00"])
def test_nul_in_self_care_is_400(customer, url):
    response = customer.get(url)
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_nul_in_a_posted_form_or_the_path_is_400(admin):
    assert admin.post("/admin/customers/new", data={"name": "a\x00b"}).status_code == 400
    assert admin.post("/admin/switch/calls/abc%00def/hangup").status_code == 400


def test_a_page_number_beyond_bigint_is_400(app, admin, customer):
    for url in admin_get_routes(app):
        response = admin.get(f"{url}?page={HUGE_PAGE}")
        assert response.status_code in (200, 400), f"GET {url}?page=... answered {response.status_code}"
    for url in ("/admin/customers", "/admin/users", "/admin/audit", "/admin/invoices", "/admin/staff",
                "/admin/sign-ins"):
        response = admin.get(f"{url}?page={HUGE_PAGE}")
        assert response.status_code == 400 and "page number" in _body(response), url
    for url in ("/my/rates", "/my/ledger"):
        assert customer.get(f"{url}?page={HUGE_PAGE}").status_code == 400


@pytest.mark.parametrize("url", [
    "/admin/cdrs?date_to=9999-12-31", "/admin/cdrs/totals?date_to=9999-12-31",
    "/admin/cdrs/export.csv?date_to=9999-12-31", "/admin/reports?date_from=9999-12-01&date_to=9999-12-31",
    "/admin/reports.csv?date_to=9999-12-31", "/admin/cdrs?date_from=0001-01-01"])
def test_far_off_dates_are_400_in_the_back_office(admin, url):
    response = admin.get(url)
    assert response.status_code == 400 and response.mimetype in ("text/html", "application/json"), url


@pytest.mark.parametrize("url", ["/my/cdrs?date_to=9999-12-31", "/my/cdrs.csv?date_to=9999-12-31",
                                 "/my/ledger?date_to=9999-12-31", "/my/ledger?date_from=9999-12-31&view=days"])
def test_far_off_dates_are_400_in_self_care_before_any_byte_is_streamed(customer, url):
    response = customer.get(url)
    assert response.status_code == 400 and response.mimetype in ("text/html", "application/json"), url
    assert "between 1970-01-01 and 2999-12-31" in _body(response) or "not valid" in _body(response)


@pytest.mark.parametrize("query", ["date_from=2020-01-01&date_to=2025-01-01", "date_from=2000-01-01",
                                   "date_from=2025-01-01&date_to=2026-01-02"])
def test_reports_over_366_days_are_400(admin, query):
    for url in ("/admin/reports", "/admin/reports.csv"):
        response = admin.get(f"{url}?{query}")
        assert response.status_code == 400 and "366 days" in _body(response), (url, query)
    assert admin.get("/admin/reports?date_from=2025-01-01&date_to=2026-01-01").status_code == 200


def test_invoice_period_with_a_far_off_date_is_refused(admin, people):
    response = admin.post("/admin/invoices/generate", data={
        "customer_id": people["acme"].id, "period_start": "9999-12-01", "period_last": "9999-12-31"})
    assert response.status_code == 302  # flashed beside the list, nothing built
    assert "between 1970-01-01" in admin.get("/admin/invoices").get_data(as_text=True)


# ----------------------------------------------------------------------------- database down

@pytest.fixture()
def no_database():
    """A portal whose database does not answer (nothing listens on port 1). No fixture of
    the test database here: its session would stand in for the missing one."""
    return create_app(TestingConfig, DATABASE_URL="postgresql://postgres@127.0.0.1:1/billing",
                      PROPAGATE_EXCEPTIONS=False)


def test_without_its_database_the_portal_answers_503_with_its_own_page(no_database):
    browser = FreshClient(no_database, no_database.response_class)
    with no_database.app_context():
        response = browser.post("/login", data={"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    body = response.get_data(as_text=True)
    assert "Temporarily unavailable" in body and "cannot reach its database" in body
    assert "Traceback" not in body and "psycopg2" not in body


def test_a_signed_in_browser_gets_503_too_when_the_database_goes(no_database):
    from flask.sessions import SecureCookieSessionInterface

    with no_database.app_context():
        signed_in = SecureCookieSessionInterface().get_signing_serializer(no_database).dumps({"_user_id": "1.1"})
        browser = FreshClient(no_database, no_database.response_class)
        browser.set_cookie("session", signed_in)
        for url in ("/my/", "/admin/customers", "/", "/my/cdrs.csv"):
            response = browser.get(url)
            assert response.status_code == 503 and response.headers.get("Retry-After"), url
            assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_query_errors_are_still_500_not_503(app, admin, monkeypatch):
    """Only an unreachable database is a 503: a broken query stays a logged 500."""
    from sqlalchemy import text

    from portal.admin import dashboard
    from portal.extensions import db

    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        monkeypatch.setattr(dashboard, "render_template",
                            lambda *a, **k: db.session.execute(text("SELECT no_such_column FROM billing.customers")))
        response = admin.get("/admin/dashboard")
        assert response.status_code == 500
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
