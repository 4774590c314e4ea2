"""Items 2 and 4: sessions are revoked by signing out, a password change and an admin's
"sign out everywhere" (old session cookie and old remember_token alike), and the
remember-me cookie carries the session cookie's flags."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.models import User
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, FreshClient, cookie, sign_in

NEW_PASSWORD = "Another-long-passphrase-7"


def stolen_cookies(client) -> tuple[str, str]:
    """What an attacker copies from a signed-in browser."""
    session, remember = cookie(client, "session"), cookie(client, "remember_token")
    assert session and remember
    return session, remember


def signed_in(new_client, session: str | None = None, remember: str | None = None) -> bool:
    """Whether a fresh browser holding only these cookies is signed in to self care."""
    browser = new_client()
    if session:
        browser.set_cookie("session", session)
    if remember:
        browser.set_cookie("remember_token", remember)
    response = browser.get("/my/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_old_cookies_are_worthless_after_sign_out(new_client, people):
    victim = new_client()
    assert sign_in(victim, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True).status_code == 302
    session, remember = stolen_cookies(victim)
    # the copies work while the victim is signed in (so the checks below can fail)
    assert signed_in(new_client, session=session) and signed_in(new_client, remember=remember)
    assert victim.post("/logout").status_code == 302
    assert not signed_in(new_client, session=session)
    assert not signed_in(new_client, remember=remember)
    assert not signed_in(new_client, session=session, remember=remember)


def test_old_cookies_are_worthless_after_a_password_change(new_client, people):
    victim, elsewhere = new_client(), new_client()
    sign_in(victim, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    sign_in(elsewhere, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    session, remember = stolen_cookies(elsewhere)
    response = victim.post("/my/settings/password", data={
        "current_password": CUSTOMER_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert victim.get("/my/").status_code == 200, "the browser that changed the password stays signed in"
    assert not signed_in(new_client, session=session)
    assert not signed_in(new_client, remember=remember)
    assert elsewhere.get("/my/").status_code == 302


def test_old_cookies_are_worthless_after_an_admin_signs_the_user_out_everywhere(new_client, people):
    victim, admin = new_client(), new_client()
    sign_in(victim, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    session, remember = stolen_cookies(victim)
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = admin.post(f"/admin/users/{people['customer'].id}/sign-out")
    assert response.status_code == 302
    assert not signed_in(new_client, session=session)
    assert not signed_in(new_client, remember=remember)
    assert admin.get("/admin/customers").status_code == 200, "the admin's own session is untouched"


def test_disabling_a_user_revokes_their_cookies_also_once_enabled_again(new_client, people):
    victim, admin = new_client(), new_client()
    sign_in(victim, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    session, remember = stolen_cookies(victim)
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    user_id = people["customer"].id
    admin.post(f"/admin/users/{user_id}/toggle")
    admin.post(f"/admin/users/{user_id}/toggle")
    db.session.expire_all()
    assert db.session.get(User, user_id).active
    assert not signed_in(new_client, session=session) and not signed_in(new_client, remember=remember)


def test_signing_out_everywhere_from_the_account_page(new_client, people):
    first, second = new_client(), new_client()
    sign_in(first, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    sign_in(second, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    session, remember = stolen_cookies(second)
    assert first.post("/account/sign-out-everywhere").status_code == 302
    assert first.get("/my/").status_code == 302
    assert not signed_in(new_client, session=session) and not signed_in(new_client, remember=remember)


def test_a_cookie_of_the_old_format_signs_nobody_in(app, new_client, people):
    """Sessions issued before session versions held the bare id."""
    from flask.sessions import SecureCookieSessionInterface

    forged = SecureCookieSessionInterface().get_signing_serializer(app).dumps({"_user_id": str(people["customer"].id)})
    assert not signed_in(new_client, session=forged)


# ----------------------------------------------------------------------------- item 4

def _set_cookie(response, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert headers, f"no {name} cookie set"
    return headers[0]


def test_remember_cookie_is_httponly_samesite_and_lasts_two_weeks(new_client, people):
    response = sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    header = _set_cookie(response, "remember_token")
    assert "HttpOnly" in header and "SameSite=Lax" in header
    expires = parsedate_to_datetime(header.split("Expires=")[1].split(";")[0])
    assert timedelta(days=13) < expires - datetime.now(timezone.utc) <= timedelta(days=14, minutes=1)


@pytest.fixture()
def secure_app(database_url, db_session):
    return create_app(TestingConfig, DATABASE_URL=database_url, SESSION_COOKIE_SECURE=True)


def test_remember_cookie_is_secure_when_the_session_cookie_is(secure_app, people):
    browser = FreshClient(secure_app, secure_app.response_class, use_cookies=True)
    response = browser.post("/login", data={"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD, "remember": "y"},
                            base_url="https://portal.test")
    assert "Secure" in _set_cookie(response, "session")
    assert "Secure" in _set_cookie(response, "remember_token")
