"""Item 9, staff roles: every admin route walked as finance and as support against the
rule table (portal/admin/access.py); every route has an explicit rule."""
from __future__ import annotations

import pytest

from portal.admin.access import ADMIN, LOOKUP, MONEY, READ, RULES
from tests import factories

from .conftest import sign_in

PASSWORD = "staff-password-long-1"


def admin_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")), key=lambda r: r.rule)


def test_every_admin_route_has_an_explicit_rule(app):
    endpoints = {r.endpoint for r in admin_rules(app)}
    missing = sorted(endpoints - set(RULES))
    assert not missing, f"add a rule for {missing} to portal/admin/access.py (admin-only until then)"
    assert not set(RULES) - endpoints, "access.py names routes that do not exist"
    assert all(rule <= {"admin", "finance", "support"} and "admin" in rule for rule in RULES.values())


def _url(rule) -> str:
    values = {}
    for arg in rule.arguments:
        converter = type(rule._converters[arg]).__name__
        values[arg] = 2**31 if converter == "IntegerConverter" else "x"
    return rule.build(values)[1]


@pytest.fixture()
def staff_browser(new_client, db_session):
    def make(role: str):
        factories.user(f"{role}@operator.example", PASSWORD, role=role)
        browser = new_client()
        assert sign_in(browser, f"{role}@operator.example", PASSWORD).status_code == 302
        return browser
    return make


@pytest.mark.parametrize("role", ["finance", "support", "admin"])
def test_every_admin_route_answers_as_its_rule_says(app, staff_browser, role):
    browser = staff_browser(role)
    checked = []
    for rule in admin_rules(app):
        url = _url(rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            response = browser.open(url, method=method, data={})
            allowed = role in RULES[rule.endpoint]
            if allowed:
                assert response.status_code != 403, f"{role} {method} {url} ({rule.endpoint}) refused"
                assert response.status_code < 500, f"{role} {method} {url} answered {response.status_code}"
            else:
                assert response.status_code == 403, f"{role} {method} {url} ({rule.endpoint}) answered {response.status_code}"
            checked.append((rule.endpoint, method, allowed))
    assert len(checked) >= 100
    if role == "support":
        assert not [c for c in checked if c[1] == "POST" and c[2]], "support is read-only"


def test_the_matrix_says_what_the_roles_mean():
    # finance: money, invoices, reports; no routing
    for endpoint in ("admin.customer_ledger", "admin.invoices_issue", "admin.invoices_credit_note", "admin.reports",
                     "admin.reports_csv", "admin.cdrs_export"):
        assert "finance" in RULES[endpoint], endpoint
    for endpoint in ("admin.routing_rules", "admin.routing_rule_new", "admin.providers", "admin.gateway_edit",
                     "admin.simulator", "admin.endpoints", "admin.switch", "admin.settings", "admin.staff"):
        assert "finance" not in RULES[endpoint], endpoint
    # support: read-only, looks up a customer's calls
    for endpoint in ("admin.customers", "admin.customer", "admin.cdrs", "admin.cdrs_totals", "admin.simulator"):
        assert "support" in RULES[endpoint], endpoint
    for endpoint in ("admin.customer_ledger", "admin.reports", "admin.staff", "admin.audit_log", "admin.sign_ins"):
        assert "support" not in RULES[endpoint], endpoint
    assert {ADMIN, MONEY, LOOKUP, READ} >= set(RULES.values())


def test_navigation_shows_only_what_the_role_may_open(staff_browser):
    html = staff_browser("support").get("/admin/customers").get_data(as_text=True)
    assert 'href="/admin/cdrs"' in html and 'href="/admin/reports"' not in html and 'href="/admin/staff"' not in html
    html = staff_browser("finance").get("/admin/customers").get_data(as_text=True)
    assert 'href="/admin/reports"' in html and 'href="/admin/providers"' not in html


def test_a_customer_is_refused_every_admin_route(app, people, new_client):
    from tests.conftest import CUSTOMER_PASSWORD

    from .conftest import CUSTOMER_EMAIL

    browser = new_client()
    sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    for rule in admin_rules(app):
        for method in sorted(rule.methods & {"GET", "POST"}):
            assert browser.open(_url(rule), method=method).status_code == 403, rule.endpoint
