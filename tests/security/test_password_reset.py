"""Item 9: password reset by e-mail: single-use, expiring token; the same answer whether
or not the address has an account; the link's host is PORTAL_URL, never the Host header."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.models import AccountToken, MailMessage
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, FreshClient, cookie, sign_in

NEW = "Fresh-passphrase-for-2027"


def reset_mails(to: str | None = None) -> list[MailMessage]:
    stmt = select(MailMessage).where(MailMessage.kind == "password_reset").order_by(MailMessage.id)
    if to:
        stmt = stmt.where(MailMessage.to_addr == to)
    return list(db.session.scalars(stmt))


def link_of(mail: MailMessage) -> str:
    return re.search(r"http://portal\.test(/password/reset/\S+)", mail.body).group(1)


def ask(browser, email: str, **kw):
    return browser.post("/password/forgot", data={"email": email}, **kw)


def test_same_answer_whether_or_not_the_address_has_an_account(new_client, people):
    answers = []
    for email in (CUSTOMER_EMAIL, "nobody@nowhere.example"):
        browser = new_client()
        response = ask(browser, email)
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        answers.append((response.status_code, response.headers["Location"],
                        page.replace(email, "<address>")))
    assert answers[0] == answers[1]
    assert [m.to_addr for m in reset_mails()] == [CUSTOMER_EMAIL]


def test_the_link_resets_the_password_once_and_signs_out_every_session(new_client, people):
    victim = new_client()
    sign_in(victim, CUSTOMER_EMAIL, CUSTOMER_PASSWORD, remember=True)
    remember = cookie(victim, "remember_token")
    ask(new_client(), CUSTOMER_EMAIL)
    link = link_of(reset_mails()[0])
    browser = new_client()
    assert browser.get(link).status_code == 200
    assert browser.post(link, data={"new_password": NEW, "confirm": NEW}).status_code == 302
    assert sign_in(new_client(), CUSTOMER_EMAIL, NEW).status_code == 302
    assert victim.get("/my/").status_code == 302
    stale = new_client()
    stale.set_cookie("remember_token", remember)
    assert stale.get("/my/").status_code == 302
    # single use
    again = new_client()
    assert again.get(link).status_code == 400
    assert again.post(link, data={"new_password": "Another-one-entirely-9", "confirm": "Another-one-entirely-9"}
                      ).status_code == 400
    assert sign_in(new_client(), CUSTOMER_EMAIL, NEW).status_code == 302


def test_an_expired_link_is_refused(new_client, people):
    ask(new_client(), CUSTOMER_EMAIL)
    link = link_of(reset_mails()[0])
    db.session.execute(AccountToken.__table__.update().values(expires_at=db.func.now() - db.text("interval '1 second'")))
    browser = new_client()
    assert browser.get(link).status_code == 400
    assert browser.post(link, data={"new_password": NEW, "confirm": NEW}).status_code == 400
    assert sign_in(new_client(), CUSTOMER_EMAIL, CUSTOMER_PASSWORD).status_code == 302


def test_a_newer_link_voids_the_older_one_and_a_made_up_one_does_nothing(new_client, people):
    ask(new_client(), CUSTOMER_EMAIL)
    ask(new_client(), CUSTOMER_EMAIL)
    first, second = (link_of(m) for m in reset_mails())
    assert new_client().get(first).status_code == 400
    assert new_client().get(second).status_code == 200
    assert new_client().get("/password/reset/" + "A" * 43).status_code == 400


def test_only_a_hash_of_the_token_is_stored_and_admins_never_see_the_link(new_client, people):
    ask(new_client(), CUSTOMER_EMAIL)
    mail = reset_mails()[0]
    token = link_of(mail).rsplit("/", 1)[1]
    stored = db.session.scalar(select(AccountToken))
    assert token.encode() not in stored.token_hash and len(stored.token_hash) == 32
    admin = new_client()
    sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert token not in admin.get(f"/admin/mail/{mail.id}").get_data(as_text=True)
    assert token not in admin.get("/admin/mail").get_data(as_text=True)


def test_the_link_comes_from_portal_url_not_from_the_host_header(new_client, people):
    ask(new_client(), CUSTOMER_EMAIL, headers={"Host": "evil.example"}, base_url="http://evil.example")
    body = reset_mails()[0].body
    assert "http://portal.test/password/reset/" in body and "evil.example" not in body


def test_reset_mails_are_throttled_per_address(new_client, people):
    for _ in range(6):
        ask(new_client(), CUSTOMER_EMAIL)
    assert len(reset_mails()) == 3


def test_a_short_password_is_refused_and_the_link_still_works(new_client, people):
    ask(new_client(), CUSTOMER_EMAIL)
    link = link_of(reset_mails()[0])
    browser = new_client()
    response = browser.post(link, data={"new_password": "short", "confirm": "short"})
    assert response.status_code == 400 and "at least" in response.get_data(as_text=True)
    response = browser.post(link, data={"new_password": "x" + CUSTOMER_EMAIL + "1", "confirm": "x" + CUSTOMER_EMAIL + "1"})
    assert response.status_code == 400 and "must not contain your e-mail" in response.get_data(as_text=True)
    assert browser.post(link, data={"new_password": NEW, "confirm": NEW}).status_code == 302


@pytest.fixture()
def without_portal_url(database_url, db_session):
    app = create_app(TestingConfig, DATABASE_URL=database_url, PORTAL_URL="")
    return FreshClient(app, app.response_class)


def test_without_portal_url_the_feature_is_off_for_everyone(without_portal_url, people):
    page = without_portal_url.get("/password/forgot").get_data(as_text=True)
    assert "not set up on this portal" in page
    assert without_portal_url.post("/password/forgot", data={"email": CUSTOMER_EMAIL}).status_code == 200
    assert reset_mails() == []
    assert "Forgot your password" not in without_portal_url.get("/login").get_data(as_text=True)
