"""Self-care forms: SIP password, alert settings, portal password."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import text

from portal.endpoints import services
from portal.errors import NotFound, Refused
from portal.extensions import db
from portal.models import AuditLog, MailMessage, User
from portal.security import verify_password
from tests.conftest import CUSTOMER_PASSWORD, login

from .conftest import A_EMAIL

STRONG = "Blue-Harbor-42x"


# ----------------------------------------------------------------------------- SIP password

@pytest.mark.parametrize("password, problem", [
    ("Short-1a", "at least 12"),
    ("alllowercaseletters", "three of"),
    ("ALLUPPER-AND-SYMBOLS", "three of"),
    ("Aa1-Aa1-Aa1-Aa1", "different characters"),
    ("Has space in 1T", "Only letters"),
    ("Quote\"Inside1a", "Only letters"),
    ("x-Alpha100-2024", "user name"),
    ("A" * 100 + "b1-" * 10, "at most 128"),
])
def test_sip_password_strength(password, problem):
    assert problem in services.sip_password_problem(password, "alpha100")


def test_sip_password_suggestion_is_strong():
    for _ in range(20):
        assert services.sip_password_problem(services.suggest_sip_password(), "alpha100") is None
    assert services.sip_password_problem(STRONG, "alpha100") is None


def test_change_sip_password(client_a, world):
    url = f"/my/endpoints/{world.a.sip.id}/password"
    form = client_a.get(url).data.decode()
    assert "alpha100@sip.example.net" in form and "data-confirm=" in form
    response = client_a.post(url, data={"password": STRONG, "confirm": STRONG})
    assert response.status_code == 302 and response.headers["Location"].endswith("/my/endpoints")
    db.session.expire_all()
    assert world.a.sip.password == STRONG
    entry = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "sip_password_changed"))
    assert entry.actor == A_EMAIL and entry.entity_id == str(world.a.sip.id)
    assert STRONG not in str(entry.details)
    assert "The SIP password of alpha100 is changed" in client_a.get("/my/endpoints").data.decode()


@pytest.mark.parametrize("data, error", [
    ({"password": STRONG, "confirm": STRONG + "x"}, "The two passwords differ."),
    ({"password": "weak", "confirm": "weak"}, "Use at least 12 characters."),
    ({"password": "", "confirm": ""}, "This field is required."),
    ({"password": "secret-password", "confirm": "secret-password"}, "Mix at least three"),
])
def test_change_sip_password_refused(client_a, world, data, error):
    response = client_a.post(f"/my/endpoints/{world.a.sip.id}/password", data=data)
    html = response.data.decode()
    assert response.status_code == 200 and error in html
    assert 'class="invalid-feedback">' in html          # beside the field
    db.session.expire_all()
    assert world.a.sip.password == "secret-password"


def test_same_sip_password_is_refused(world):
    world.a.sip.password = STRONG
    with pytest.raises(Refused, match="current password"):
        services.change_sip_password(world.a.sip.id, STRONG, customer_id=world.a.customer.id, actor="t")


def test_service_refuses_other_customers_endpoint(world):
    with pytest.raises(NotFound):
        services.change_sip_password(world.b.sip.id, STRONG, customer_id=world.a.customer.id, actor="t")
    with pytest.raises(NotFound):
        services.sip_account(world.a.ip.id, customer_id=world.a.customer.id)


# ----------------------------------------------------------------------------- settings

def test_settings_form_shows_current_values(client_a, world):
    html = client_a.get("/my/settings").data.decode()
    assert 'value="150.00"' in html and 'value="billing@alpha.example"' in html


def test_update_settings(client_a, world):
    response = client_a.post("/my/settings", data={"low_balance_alert": "5.5", "email": "alerts@alpha.example",
                                                   "daily_balance_email": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    c = world.a.customer
    # The new address gets a confirmation link; mail goes to the old one until it is opened.
    assert (c.low_balance_alert, c.email, c.daily_balance_email) == (Decimal("5.500000"), "billing@alpha.example", True)
    mail = db.session.scalar(db.select(MailMessage).where(MailMessage.kind == "email_verification"))
    assert mail.to_addr == "alerts@alpha.example"
    link = re.search(r"http://portal\.test(/my/settings/email/\S+)", mail.body).group(1)
    assert client_a.get(link).status_code == 200
    assert client_a.post(link).status_code == 302
    db.session.expire_all()
    assert c.email == "alerts@alpha.example"
    audit = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "selfcare_settings_changed"))
    assert audit.details["low_balance_alert"] == ["150.000000", "5.5"]
    client_a.post("/my/settings", data={"low_balance_alert": "", "email": "alerts@alpha.example"})
    db.session.expire_all()
    assert (c.low_balance_alert, c.daily_balance_email) == (None, False)


@pytest.mark.parametrize("data, error", [
    ({"low_balance_alert": "abc", "email": "a@b.c"}, "is not an amount"),
    ({"low_balance_alert": "1.1234567", "email": "a@b.c"}, "more than 6 decimal places"),
    ({"low_balance_alert": "1e12", "email": "a@b.c"}, "too large"),
    ({"low_balance_alert": "5", "email": ""}, "enter an address"),
    ({"daily_balance_email": "y", "email": ""}, "enter an address"),
    ({"low_balance_alert": "5", "email": "not an address"}, "Enter an e-mail address"),
])
def test_settings_refused(client_a, world, data, error):
    response = client_a.post("/my/settings", data=data)
    assert response.status_code == 200 and error in response.data.decode()
    db.session.expire_all()
    assert world.a.customer.low_balance_alert == Decimal("150") and world.a.customer.email == "billing@alpha.example"


# ----------------------------------------------------------------------------- portal password

def test_change_portal_password(client_a, client, world):
    response = client_a.post("/my/settings/password", data={
        "current_password": CUSTOMER_PASSWORD, "new_password": STRONG, "confirm": STRONG})
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, world.a.user.id)
    assert user.password_hash.startswith("$argon2id$") and verify_password(user.password_hash, STRONG)
    client_a.post("/logout")
    login(client_a, A_EMAIL, STRONG)


@pytest.mark.parametrize("data, error", [
    ({"current_password": "wrong-password", "new_password": STRONG, "confirm": STRONG}, "not correct"),
    ({"current_password": CUSTOMER_PASSWORD, "new_password": "short", "confirm": "short"}, "at least 10"),
    ({"current_password": CUSTOMER_PASSWORD, "new_password": STRONG, "confirm": "other-password"}, "differ"),
    ({"current_password": CUSTOMER_PASSWORD, "new_password": CUSTOMER_PASSWORD, "confirm": CUSTOMER_PASSWORD},
     "must differ"),
    ({"current_password": "", "new_password": STRONG, "confirm": STRONG}, "This field is required."),
])
def test_change_portal_password_refused(client_a, world, data, error):
    response = client_a.post("/my/settings/password", data=data)
    assert response.status_code == 200 and error in response.data.decode()
    db.session.expire_all()
    assert verify_password(db.session.get(User, world.a.user.id).password_hash, CUSTOMER_PASSWORD)


def test_no_plain_password_anywhere(world):
    hashes = db.session.execute(text("SELECT password_hash FROM billing.users")).scalars().all()
    assert all(h.startswith("$argon2") for h in hashes)
