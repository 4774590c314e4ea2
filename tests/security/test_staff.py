"""Item 9: the staff screen (create, change role, disable, reset, sign out), all audited."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, User
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

from .conftest import sign_in

PASSWORD = "staff-password-long-1"


def _admin(new_client):
    browser = new_client()
    assert sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302
    return browser


def _audit(entity: str) -> list[tuple[str, dict]]:
    return [(a.action, a.details) for a in db.session.scalars(
        select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id))]


def _staff(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def test_admin_creates_a_finance_user_who_signs_in_to_the_back_office(new_client, people):
    admin = _admin(new_client)
    response = admin.post("/admin/staff/new", data={"email": "Money@Operator.example", "role": "finance",
                                                    "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    user = _staff("money@operator.example")
    assert user.role == "finance" and user.customer_id is None
    assert ("create", {"email": "money@operator.example", "role": "finance"}) in _audit("staff")
    finance = new_client()
    assert sign_in(finance, "money@operator.example", PASSWORD).headers["Location"] == "/"
    assert finance.get("/").headers["Location"].endswith("/admin/dashboard")
    assert finance.get("/admin/invoices").status_code == 200
    assert finance.get("/admin/routing-rules").status_code == 403
    assert "money@operator.example" in admin.get("/admin/staff").get_data(as_text=True)


def test_duplicate_e_mail_is_refused_beside_the_field(new_client, people):
    admin = _admin(new_client)
    response = admin.post("/admin/staff/new", data={"email": ADMIN_EMAIL, "role": "support",
                                                    "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400 and "exists already" in response.get_data(as_text=True)


def test_disabling_a_staff_member_signs_them_out_at_once(new_client, people):
    admin = _admin(new_client)
    admin.post("/admin/staff/new", data={"email": "help@operator.example", "role": "support",
                                         "password": PASSWORD, "confirm": PASSWORD})
    support = new_client()
    sign_in(support, "help@operator.example", PASSWORD)
    assert support.get("/admin/customers").status_code == 200
    user = _staff("help@operator.example")
    assert admin.post(f"/admin/staff/{user.id}/edit", data={"role": "support"}).status_code == 302  # active unticked
    assert support.get("/admin/customers").status_code == 302
    assert sign_in(new_client(), "help@operator.example", PASSWORD).status_code == 200  # refused
    assert ("update", {"email": "help@operator.example", "active": [True, False]}) in _audit("staff")


def test_a_role_change_takes_effect_with_a_new_sign_in(new_client, people):
    admin = _admin(new_client)
    admin.post("/admin/staff/new", data={"email": "help@operator.example", "role": "support",
                                         "password": PASSWORD, "confirm": PASSWORD})
    support = new_client()
    sign_in(support, "help@operator.example", PASSWORD)
    user = _staff("help@operator.example")
    admin.post(f"/admin/staff/{user.id}/edit", data={"role": "admin", "active": "y"})
    assert support.get("/admin/customers").status_code == 302
    assert _staff("help@operator.example").role == "admin"


def test_the_last_admin_cannot_be_demoted_and_nobody_demotes_themselves(new_client, people):
    admin = _admin(new_client)
    me = people["admin"]
    response = admin.post(f"/admin/staff/{me.id}/edit", data={"role": "support", "active": "y"})
    assert response.status_code == 400 and "last active admin" in response.get_data(as_text=True)
    admin.post("/admin/staff/new", data={"email": "second@operator.example", "role": "admin",
                                         "password": PASSWORD, "confirm": PASSWORD})
    response = admin.post(f"/admin/staff/{me.id}/edit", data={"role": "support", "active": "y"})
    assert response.status_code == 400 and "your own role" in response.get_data(as_text=True)
    assert _staff(ADMIN_EMAIL).role == "admin"


def test_password_reset_and_sign_out_by_an_admin(new_client, people):
    admin = _admin(new_client)
    admin.post("/admin/staff/new", data={"email": "help@operator.example", "role": "support",
                                         "password": PASSWORD, "confirm": PASSWORD})
    user = _staff("help@operator.example")
    support = new_client()
    sign_in(support, "help@operator.example", PASSWORD)
    admin.post(f"/admin/users/{user.id}/sign-out")
    assert support.get("/admin/customers").status_code == 302
    sign_in(support, "help@operator.example", PASSWORD)
    admin.post(f"/admin/staff/{user.id}/password", data={"password": "new-staff-password-2",
                                                         "confirm": "new-staff-password-2"})
    assert support.get("/admin/customers").status_code == 302
    assert sign_in(new_client(), "help@operator.example", "new-staff-password-2").status_code == 302
    actions = [a for a, _ in _audit("staff")] + [a for a, _ in _audit("user")]
    assert "reset_password" in actions and "sign_out_everywhere" in actions


def test_finance_and_support_cannot_open_the_staff_screen(new_client, people):
    from tests import factories

    for role in ("finance", "support"):
        factories.user(f"{role}@operator.example", PASSWORD, role=role)
        browser = new_client()
        sign_in(browser, f"{role}@operator.example", PASSWORD)
        assert browser.get("/admin/staff").status_code == 403
        assert browser.post("/admin/staff/new", data={"email": "x@y.example", "role": "admin", "password": PASSWORD,
                                                      "confirm": PASSWORD}).status_code == 403
    assert _staff("x@y.example") is None
