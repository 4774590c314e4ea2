"""Item 9: TOTP two-factor sign-in (authenticator apps) with recovery codes, required for
staff when the operator turns it on."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pyotp
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, AuthEvent, Settings, User
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, sign_in


def enrol(browser) -> tuple[str, list[str]]:
    """Set up two-factor sign-in through the pages; returns (secret, recovery codes)."""
    page = browser.get("/account/two-factor").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert 'src="data:image/svg+xml' in page
    response = browser.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", response.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def code_at(secret: str, seconds_from_now: int) -> str:
    return pyotp.TOTP(secret).at(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now))


def test_a_stolen_password_alone_no_longer_signs_in(new_client, people):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    secret, _ = enrol(owner)
    assert owner.get("/my/").status_code == 200, "the browser that turned it on stays signed in"
    thief = new_client()
    response = sign_in(thief, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert response.headers["Location"] == "/login/code"
    assert thief.get("/my/").status_code == 302
    response = thief.post("/login/code", data={"code": "123456"})
    assert response.status_code == 400 and thief.get("/my/").status_code == 302
    # the owner, with the app
    browser = new_client()
    sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert browser.post("/login/code", data={"code": code_at(secret, 30)}).status_code == 302
    assert browser.get("/my/").status_code == 200


def test_a_code_works_once(new_client, people):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    secret, _ = enrol(owner)
    code = code_at(secret, 30)   # a step the enrolment did not use
    first = new_client()
    sign_in(first, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert first.post("/login/code", data={"code": code}).status_code == 302
    replay = new_client()
    sign_in(replay, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert replay.post("/login/code", data={"code": code}).status_code == 400


def test_a_recovery_code_works_once(new_client, people):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    _, codes = enrol(owner)
    browser = new_client()
    sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert browser.post("/login/code", data={"code": codes[3].upper()}).status_code == 302
    again = new_client()
    sign_in(again, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert again.post("/login/code", data={"code": codes[3]}).status_code == 400
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "recovery_code_used")).details["left"] == 9


def test_guessing_codes_is_throttled_for_the_account(new_client, people):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    secret, _ = enrol(owner)
    thief = new_client()
    sign_in(thief, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    statuses = [thief.post("/login/code", data={"code": f"{i:06d}"}).status_code for i in range(6)]
    assert statuses == [400] * 5 + [302]       # the sixth: back to the password page
    sign_in(thief, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ip="203.0.113.50")
    assert thief.post("/login/code", data={"code": code_at(secret, 30)}).headers["Location"] == "/login"
    assert thief.get("/my/").status_code == 302
    failures = db.session.scalars(select(AuthEvent.reason).where(AuthEvent.kind == "second_factor")).all()
    assert failures.count("wrong_code") == 5 and "throttled" in failures


def test_the_pending_sign_in_expires(new_client, people, monkeypatch):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    secret, _ = enrol(owner)
    browser = new_client()
    sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    from portal.auth import routes

    monkeypatch.setattr(routes, "PENDING_SECONDS", -1)
    assert browser.post("/login/code", data={"code": code_at(secret, 30)}).headers["Location"] == "/login"
    assert browser.get("/my/").status_code == 302


def test_turning_it_off_needs_the_password_and_a_code(new_client, people):
    owner = new_client()
    sign_in(owner, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    secret, _ = enrol(owner)
    response = owner.post("/account/two-factor/disable", data={"password": "wrong", "code": code_at(secret, 30)})
    assert response.status_code == 400
    response = owner.post("/account/two-factor/disable", data={"password": CUSTOMER_PASSWORD, "code": code_at(secret, 30)})
    assert response.status_code == 302 and owner.get("/my/").status_code == 200
    db.session.expire_all()
    assert not db.session.scalar(select(User).where(User.email == CUSTOMER_EMAIL)).two_factor_enabled
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD).headers["Location"] == "/"


def test_when_the_operator_requires_it_staff_must_set_it_up_first(new_client, people):
    Settings.get().staff_two_factor_required = True
    db.session.flush()
    admin = new_client()
    response = sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.headers["Location"] == "/account/two-factor"
    for url in ("/admin/customers", "/admin/staff", "/admin/settings"):
        assert admin.get(url).headers["Location"] == "/account/two-factor", url
    assert admin.post("/admin/customers/new", data={"name": "x"}).headers["Location"] == "/account/two-factor"
    secret, _ = enrol(admin)
    assert admin.get("/admin/customers").status_code == 200
    # it cannot be turned off while required; customers are not concerned
    assert admin.get("/account/two-factor/disable").headers["Location"] == "/account"
    customer = new_client()
    sign_in(customer, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    assert customer.get("/my/").status_code == 200


def test_the_setting_is_on_the_settings_page_and_audited(new_client, people):
    admin = new_client()
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert 'name="staff_two_factor_required"' in page


def test_an_admin_resets_the_second_factor_of_a_staff_member_who_lost_the_phone(new_client, people):
    from tests import factories

    factories.user("help@operator.example", "staff-password-long-1", role="support")
    support = new_client()
    sign_in(support, "help@operator.example", "staff-password-long-1")
    enrol(support)
    user = db.session.scalar(select(User).where(User.email == "help@operator.example"))
    admin = new_client()
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin.post(f"/admin/staff/{user.id}/reset-two-factor").status_code == 302
    assert support.get("/admin/customers").status_code == 302, "the reset signs them out"
    assert sign_in(new_client(), "help@operator.example", "staff-password-long-1").headers["Location"] == "/"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "two_factor_reset")) is not None


def test_an_admin_locked_out_of_two_factor_is_recovered_from_the_command_line(cli, new_client, people):
    admin = new_client()
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    enrol(admin)
    result = cli.invoke(args=["create-admin", "--email", ADMIN_EMAIL, "--password", "recovered-password-1",
                              "--reset-two-factor"])
    assert result.exit_code == 0 and "two-factor sign-in of" in result.output
    assert sign_in(new_client(), ADMIN_EMAIL, "recovered-password-1").headers["Location"] == "/"
