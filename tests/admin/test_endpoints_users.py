"""Endpoints (IP / SIP, password set and rotate) and customer portal users."""
from sqlalchemy import select

from portal.auth.services import authenticate
from portal.extensions import db
from portal.models import Endpoint, User
from portal.security import verify_password
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes


def _endpoint_form(customer, permission, **overrides):
    data = {"customer_id": customer.id, "name": "acme-pbx", "enabled": "y", "auth": "ip", "ip": "198.51.100.7",
            "permission_id": permission.id, "strip_digits": "0", "add_prefix": "", "context": "default"}
    data.update(overrides)
    return data


def _endpoint(name):
    return db.session.scalar(select(Endpoint).where(Endpoint.name == name))


def test_create_ip_endpoint_with_limits_and_number_manipulation(admin_client, catalogue):
    c = factories.customer(name="acme")
    page = admin_client.get(f"/admin/endpoints/new?customer_id={c.id}").get_data(as_text=True)
    assert f'<option selected value="{c.id}">' in page
    response = admin_client.post("/admin/endpoints/new", data=_endpoint_form(
        c, catalogue["standard"], max_calls="5", spend_limit_month="99.999999", strip_digits="2", add_prefix="33",
        codecs="PCMA,PCMU", bypass_media="y"))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/customers/{c.id}")
    ep = _endpoint("acme-pbx")
    assert (ep.ip, ep.max_calls, str(ep.spend_limit_month), ep.strip_digits, ep.add_prefix, ep.codecs, ep.bypass_media) == \
        ("198.51.100.7/32", 5, "99.999999", 2, "33", "PCMA,PCMU", True)
    assert ep.username is None and ep.password is None
    [row] = audit_rows("endpoint", "create")
    assert row.details["ip"] == "198.51.100.7/32"


def test_endpoint_validation_beside_fields(admin_client, catalogue):
    c = factories.customer(name="acme")
    html = admin_client.post("/admin/endpoints/new", data=_endpoint_form(
        c, catalogue["standard"], ip="198.51.100.7/24", add_prefix="+33", spend_limit_month="-1",
        strip_digits="21")).get_data(as_text=True)
    assert "did you mean 198.51.100.0/24?" in field_error(html, "ip")
    assert "Digits only" in field_error(html, "add_prefix")
    assert "at least 0" in field_error(html, "spend_limit_month")
    assert field_error(html, "strip_digits")
    html = admin_client.post("/admin/endpoints/new", data=_endpoint_form(c, catalogue["standard"], auth="sip", ip=""))\
        .get_data(as_text=True)
    assert "needs a user name" in field_error(html, "username")
    assert _endpoint("acme-pbx") is None


def test_an_ip_range_of_another_customer_is_refused_beside_the_field(admin_client, catalogue):
    acme, beta = factories.customer(name="acme"), factories.customer(name="beta")
    factories.endpoint(acme, catalogue["standard"], name="acme-pbx", ip="198.51.100.7/32")
    response = admin_client.post("/admin/endpoints/new", data=_endpoint_form(
        beta, catalogue["standard"], name="beta-net", ip="198.51.100.0/24"))
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "ip") == (
        "Overlaps 198.51.100.7/32 of customer acme (endpoint acme-pbx): an IP range belongs to one customer.")
    assert _endpoint("beta-net") is None
    # Editing an existing endpoint of beta into acme's range: the same refusal, nothing saved.
    other = factories.endpoint(beta, catalogue["standard"], name="beta-pbx", ip="203.0.113.5/32")
    response = admin_client.post(f"/admin/endpoints/{other.id}/edit", data=_endpoint_form(
        beta, catalogue["standard"], name="beta-pbx", ip="198.51.100.7"))
    assert "of customer acme" in field_error(response.get_data(as_text=True), "ip")
    db.session.expire_all()
    assert db.session.get(Endpoint, other.id).ip == "203.0.113.5/32"


def test_nested_ranges_of_one_customer_are_allowed_and_say_which_wins(admin_client, catalogue):
    acme = factories.customer(name="acme")
    factories.endpoint(acme, catalogue["standard"], name="acme-net", ip="198.51.100.0/24")
    response = admin_client.post("/admin/endpoints/new", data=_endpoint_form(acme, catalogue["standard"]))
    assert response.status_code == 302
    pbx = _endpoint("acme-pbx")
    page = admin_client.get(f"/admin/endpoints/{pbx.id}/edit").get_data(as_text=True)
    assert ("198.51.100.7/32 lies inside acme-net (198.51.100.0/24) of the same customer. The longest match "
            "takes the call") in page
    listing = admin_client.get("/admin/endpoints").get_data(as_text=True)
    assert 'data-nested-in="acme-net"' in listing and "longest match wins" in listing
    # The very same range twice is refused: a call could not be told to one of them.
    response = admin_client.post("/admin/endpoints/new", data=_endpoint_form(
        acme, catalogue["standard"], name="acme-pbx2"))
    assert field_error(response.get_data(as_text=True), "ip").startswith(
        "Endpoint acme-pbx of this customer already has 198.51.100.7/32")


def test_sip_endpoint_gets_a_generated_password_shown_once(admin_client, catalogue):
    c = factories.customer(name="acme")
    response = admin_client.post("/admin/endpoints/new", follow_redirects=True, data=_endpoint_form(
        c, catalogue["standard"], name="acme-100", auth="sip", ip="", username="acme100"))
    ep = _endpoint("acme-100")
    assert ep.auth == "sip" and ep.ip is None and len(ep.password) >= 16
    assert any(ep.password in m for m in flashes(response.get_data(as_text=True)))
    [row] = audit_rows("endpoint", "create")
    assert row.details["password"] == "set"       # never the password itself


def test_set_and_rotate_sip_password(admin_client, catalogue):
    c = factories.customer(name="acme")
    ep = factories.endpoint(c, catalogue["standard"], auth="sip", username="acme100", password="old-password")
    form = _endpoint_form(c, catalogue["standard"], name=ep.name, auth="sip", ip="", username="acme100")
    admin_client.post(f"/admin/endpoints/{ep.id}/edit", data=form)           # empty password keeps it
    db.session.expire_all()
    assert db.session.get(Endpoint, ep.id).password == "old-password"
    admin_client.post(f"/admin/endpoints/{ep.id}/edit", data={**form, "new_password": "brand-new-pw"})
    db.session.expire_all()
    assert db.session.get(Endpoint, ep.id).password == "brand-new-pw"
    response = admin_client.post(f"/admin/endpoints/{ep.id}/password", follow_redirects=True)
    db.session.expire_all()
    rotated = db.session.get(Endpoint, ep.id).password
    assert rotated != "brand-new-pw" and any(rotated in m for m in flashes(response.get_data(as_text=True)))
    assert [r.action for r in audit_rows("endpoint")] == ["update", "update", "rotate_password"]
    assert audit_rows("endpoint")[1].details == {"password": "changed"}


def test_endpoint_switched_to_ip_drops_sip_credentials(admin_client, catalogue):
    c = factories.customer(name="acme")
    ep = factories.endpoint(c, catalogue["standard"], auth="sip", username="acme100")
    admin_client.post(f"/admin/endpoints/{ep.id}/edit", data=_endpoint_form(c, catalogue["standard"], name=ep.name,
                                                                           ip="203.0.113.0/24"))
    db.session.expire_all()
    ep = db.session.get(Endpoint, ep.id)
    assert (ep.auth, ep.ip, ep.username, ep.password) == ("ip", "203.0.113.0/24", None, None)


def test_duplicate_sip_user_is_refused(admin_client, catalogue):
    c = factories.customer(name="acme")
    factories.endpoint(c, catalogue["standard"], auth="sip", username="taken")
    db.session.commit()
    response = admin_client.post("/admin/endpoints/new", follow_redirects=True, data=_endpoint_form(
        c, catalogue["standard"], name="second", auth="sip", ip="", username="taken"))
    assert "This SIP user name is already taken by another endpoint." in flashes(response.get_data(as_text=True))


def test_endpoint_toggle_delete_and_list(admin_client, catalogue):
    c = factories.customer(name="acme")
    ep = factories.endpoint(c, catalogue["standard"], name="trunk-1", ip="192.0.2.1/32")
    factories.endpoint(c, catalogue["standard"], name="phone-1", auth="sip", username="alice")
    html = admin_client.get("/admin/endpoints?q=192.0.2").get_data(as_text=True)
    assert "trunk-1" in html and "phone-1" not in html
    assert "phone-1" in admin_client.get("/admin/endpoints?auth=sip").get_data(as_text=True)
    admin_client.post(f"/admin/endpoints/{ep.id}/toggle")
    db.session.expire_all()
    assert db.session.get(Endpoint, ep.id).enabled is False
    admin_client.post(f"/admin/endpoints/{ep.id}/delete")
    assert db.session.get(Endpoint, ep.id) is None
    assert [r.action for r in audit_rows("endpoint")] == ["disable", "delete"]


# ------------------------------------------------------------------ portal users

def test_create_user_hashes_the_password_and_they_can_sign_in(app, admin_client, db_session):
    c = factories.customer(name="acme")
    response = admin_client.post("/admin/users/new", data={
        "customer_id": c.id, "email": "Ops@Acme.example", "password": "long-password-1", "confirm": "long-password-1"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "ops@acme.example"))
    assert user.role == "customer" and user.customer_id == c.id
    assert user.password_hash != "long-password-1" and verify_password(user.password_hash, "long-password-1")
    [row] = audit_rows("user", "create")
    assert "password" not in row.details
    assert authenticate("ops@acme.example", "long-password-1").id == user.id


def test_user_form_errors(admin_client, db_session):
    c = factories.customer(name="acme")
    html = admin_client.post("/admin/users/new", data={
        "customer_id": c.id, "email": "not-an-email", "password": "short", "confirm": "other"}).get_data(as_text=True)
    assert field_error(html, "email")
    assert "at least" in field_error(html, "password").lower()
    assert "differ" in field_error(html, "confirm")


def test_reset_password_disable_and_delete_user(app, admin_client, db_session):
    c = factories.customer(name="acme")
    user = factories.user("ops@acme.example", "first-password-1", customer=c)
    response = admin_client.post(f"/admin/users/{user.id}/password",
                                 data={"password": "second-password", "confirm": "second-password"})
    assert response.status_code == 302
    db.session.expire_all()
    assert verify_password(db.session.get(User, user.id).password_hash, "second-password")
    admin_client.post(f"/admin/users/{user.id}/toggle")
    db.session.expire_all()
    assert db.session.get(User, user.id).active is False
    assert authenticate("ops@acme.example", "second-password") is None
    admin_client.post(f"/admin/users/{user.id}/delete")
    assert db.session.get(User, user.id) is None
    assert [r.action for r in audit_rows("user")] == ["reset_password", "disable", "delete"]


def test_admin_accounts_are_not_managed_here(admin_client, admin_user):
    assert admin_client.get(f"/admin/users/{admin_user.id}/edit").status_code == 404
    assert admin_client.post(f"/admin/users/{admin_user.id}/delete").status_code == 404


def test_users_list_search(admin_client, db_session):
    a, b = factories.customer(name="acme"), factories.customer(name="beta")
    factories.user("ops@acme.example", "first-password-1", customer=a)
    factories.user("boss@beta.example", "first-password-1", customer=b)
    html = admin_client.get("/admin/users?q=beta").get_data(as_text=True)
    assert "boss@beta.example" in html and "ops@acme.example" not in html
    assert "admin@example.net" not in admin_client.get("/admin/users").get_data(as_text=True).split("</nav>", 1)[1]
