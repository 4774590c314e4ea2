"""Item 3: sign-in throttling per account and per client in PostgreSQL (shared by every
portal process), X-Forwarded-For believed only from trusted proxies, a login audit."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.models import AuthEvent
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, OTHER_EMAIL, FreshClient, sign_in

PROXY = "192.0.2.1"       # every user's requests arrive from the office's NAT / a reverse proxy
ELSEWHERE = "198.51.100.20"


def events(email: str) -> list[AuthEvent]:
    return list(db.session.scalars(select(AuthEvent).where(AuthEvent.email == email).order_by(AuthEvent.id)))


def test_ten_wrong_passwords_lock_that_account_only(new_client, people):
    attacker = new_client()
    statuses = [sign_in(attacker, CUSTOMER_EMAIL, f"guess-{i}", ip=PROXY).status_code for i in range(10)]
    assert statuses == [200] * 5 + [429] * 5
    # The right password from the same address is refused too while the lock lasts ...
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 429
    # ... but another user behind the same address signs in, and so does the victim elsewhere.
    assert sign_in(new_client(), OTHER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 302
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip=ELSEWHERE).status_code == 302


def test_throttled_answer_is_the_same_for_an_unknown_account(new_client, people):
    for email in (CUSTOMER_EMAIL, "nobody@nowhere.example"):
        browser = new_client()
        last = [sign_in(browser, email, f"guess-{i}", ip=PROXY) for i in range(6)][-1]
        assert last.status_code == 429 and b"Too many failed sign-ins for this account" in last.data


def test_one_account_from_many_addresses_meets_the_account_limit(app, new_client, people):
    limit = app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    for i in range(limit):
        assert sign_in(new_client(), CUSTOMER_EMAIL, "guess", ip=f"203.0.113.{i + 1}").status_code == 200
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip="203.0.113.200").status_code == 429


def test_many_accounts_from_one_address_meet_the_client_limit(app, new_client, people):
    limit = app.config["LOGIN_MAX_FAILURES_PER_CLIENT"]
    db.session.add_all(AuthEvent(kind="login", email=f"user{i}@example.net", client_ip="203.0.113.9", success=False,
                                 reason="wrong_password") for i in range(limit))
    db.session.flush()
    assert sign_in(new_client(), OTHER_EMAIL, CUSTOMER_PASSWORD, ip="203.0.113.9").status_code == 429
    assert sign_in(new_client(), OTHER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 302


def test_failures_older_than_the_window_do_not_count(app, new_client, people):
    for _ in range(5):
        sign_in(new_client(), CUSTOMER_EMAIL, "guess", ip=PROXY)
    db.session.execute(AuthEvent.__table__.update().values(at=db.func.now() - db.text("interval '16 minutes'")))
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 302


def test_failures_counted_by_another_process_throttle_this_one(pg, new_client, people):
    """The count lives in billing.auth_events: rows written by another worker or server (here
    straight through SQL) lock the account in this process, whose memory holds nothing."""
    with pg.cursor() as cur:
        cur.execute("""INSERT INTO billing.auth_events (kind, email, client_ip, success, reason)
                       SELECT 'login', %s, %s, false, 'wrong_password' FROM generate_series(1, 5)""",
                    (CUSTOMER_EMAIL, PROXY))
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 429
    assert sign_in(new_client(), OTHER_EMAIL, CUSTOMER_PASSWORD, ip=PROXY).status_code == 302


def test_login_audit_records_who_when_where_and_success(new_client, people):
    sign_in(new_client(), CUSTOMER_EMAIL, "wrong", ip=PROXY)
    sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip=ELSEWHERE)
    rows = events(CUSTOMER_EMAIL)
    assert [(r.kind, r.client_ip, r.success, r.reason) for r in rows] == [
        ("login", PROXY, False, "wrong_password"), ("login", ELSEWHERE, True, None)]
    assert rows[1].user_id == people["customer"].id and rows[0].at is not None
    admin = new_client()
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    html = admin.get("/admin/sign-ins?q=acme").get_data(as_text=True)
    assert CUSTOMER_EMAIL in html and PROXY in html and ELSEWHERE in html and "wrong password" in html
    failures = admin.get("/admin/sign-ins?result=failure&q=" + CUSTOMER_EMAIL).get_data(as_text=True)
    assert PROXY in failures and ELSEWHERE not in failures


# ----------------------------------------------------------------------------- X-Forwarded-For

def test_x_forwarded_for_is_ignored_without_trusted_proxies(new_client, people):
    """Rotating X-Forwarded-For does not escape the throttle when no proxy is trusted."""
    statuses = [new_client().post("/login", data={"email": CUSTOMER_EMAIL, "password": "guess"},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"},
                                  environ_base={"REMOTE_ADDR": PROXY}).status_code for i in range(7)]
    assert statuses[-1] == 429
    assert {e.client_ip for e in events(CUSTOMER_EMAIL)} == {PROXY}


@pytest.fixture()
def proxied(database_url, db_session):
    app = create_app(TestingConfig, DATABASE_URL=database_url, TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    return lambda: FreshClient(app, app.response_class)


def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(proxied, people):
    proxied().post("/login", data={"email": CUSTOMER_EMAIL, "password": "guess"},
                   headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    proxied().post("/login", data={"email": CUSTOMER_EMAIL, "password": "guess"},
                   headers={"X-Forwarded-For": "203.0.113.8"}, environ_base={"REMOTE_ADDR": ELSEWHERE})
    assert [e.client_ip for e in events(CUSTOMER_EMAIL)] == ["203.0.113.7", ELSEWHERE]


def test_clients_behind_a_trusted_proxy_are_throttled_apart(proxied, people):
    def attempt(client_ip, email, password):
        return proxied().post("/login", data={"email": email, "password": password},
                              headers={"X-Forwarded-For": client_ip}, environ_base={"REMOTE_ADDR": "127.0.0.1"})

    for _ in range(6):
        attempt("203.0.113.7", CUSTOMER_EMAIL, "guess")
    assert attempt("203.0.113.7", CUSTOMER_EMAIL, CUSTOMER_PASSWORD).status_code == 429
    assert attempt("203.0.113.8", CUSTOMER_EMAIL, CUSTOMER_PASSWORD).status_code == 302


def test_a_typo_in_trusted_proxies_stops_the_start(database_url):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app(TestingConfig, DATABASE_URL=database_url, TRUSTED_PROXIES="10.0.0.0/8, proxy.local")
