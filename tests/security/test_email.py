"""Item 8: the self-care e-mail address is exactly one mailbox, verified by a link
(single use, expiring) before any mail goes there."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.mail.messages import queue_low_balance_alerts
from portal.models import AccountToken, BalanceEvent, Customer, MailMessage
from tests.conftest import CUSTOMER_PASSWORD

from .conftest import CUSTOMER_EMAIL, OTHER_EMAIL, sign_in

ATTACKER = "attacker@evil.example"


@pytest.fixture()
def customer(new_client, people):
    browser = new_client()
    sign_in(browser, CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    return browser


def acme() -> Customer:
    db.session.expire_all()
    return db.session.scalar(select(Customer).where(Customer.name == "acme"))


def verification_link(to: str) -> str:
    mail = db.session.scalar(select(MailMessage).where(MailMessage.kind == "email_verification",
                                                       MailMessage.to_addr == to))
    return re.search(r"http://portal\.test(/my/settings/email/\S+)", mail.body).group(1)


@pytest.mark.parametrize("address", [f"victim,{ATTACKER}", f"billing@acme.example,{ATTACKER}", f"billing@acme.example;{ATTACKER}",
                                     f"billing@acme.example {ATTACKER}", f"Acme <{ATTACKER}>",
                                     f'"billing@acme.example, x"@evil.example'])
def test_several_recipients_are_refused(customer, address):
    response = customer.post("/my/settings", data={"email": address, "low_balance_alert": "10"})
    assert response.status_code == 200 and "one only" in response.get_data(as_text=True)
    assert acme().email == "billing@acme.example"
    assert db.session.scalar(select(MailMessage).where(MailMessage.kind == "email_verification")) is None


def test_the_database_refuses_a_list_too(pg):
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT s")
        with pytest.raises(Exception, match="ck_customers_email"):
            cur.execute("INSERT INTO billing.customers (name, email) VALUES ('x', %s)", (f"victim,{ATTACKER}",))
        cur.execute("ROLLBACK TO SAVEPOINT s")


def test_an_unverified_address_gets_no_alert_until_the_link_is_opened(customer, new_client):
    response = customer.post("/my/settings", data={"email": ATTACKER, "low_balance_alert": "10"})
    assert response.status_code == 302
    assert "We sent a link to attacker@evil.example" in customer.get("/my/settings").get_data(as_text=True)
    assert acme().email == "billing@acme.example"
    # a call takes the balance below the threshold: the alert goes to the verified address only
    db.session.add(BalanceEvent(customer_id=acme().id, kind="low_balance", balance=Decimal("4"), threshold=Decimal("10")))
    db.session.flush()
    queue_low_balance_alerts()
    alerts = db.session.scalars(select(MailMessage.to_addr).where(MailMessage.kind == "low_balance")).all()
    assert alerts == ["billing@acme.example"]
    link = verification_link(ATTACKER)
    assert customer.get(link).status_code == 200 and acme().email == "billing@acme.example"  # GET changes nothing
    assert customer.post(link).status_code == 302
    assert acme().email == ATTACKER
    assert customer.post(link).status_code == 404, "single use"


def test_another_customer_cannot_use_the_link(customer, new_client):
    customer.post("/my/settings", data={"email": "new@acme.example"})
    link = verification_link("new@acme.example")
    other = new_client()
    sign_in(other, OTHER_EMAIL, CUSTOMER_PASSWORD)
    assert other.get(link).status_code == 404 and other.post(link).status_code == 404
    assert acme().email == "billing@acme.example"


def test_an_expired_link_does_nothing(customer):
    customer.post("/my/settings", data={"email": "new@acme.example"})
    link = verification_link("new@acme.example")
    db.session.execute(AccountToken.__table__.update().values(expires_at=db.func.now() - text("interval '1 second'")))
    assert customer.post(link).status_code == 404
    assert acme().email == "billing@acme.example"


def test_removing_the_address_needs_no_link(customer):
    assert customer.post("/my/settings", data={"email": ""}).status_code == 302
    assert acme().email is None


def test_migration_removes_addresses_that_are_lists(tmp_path):
    """0102 finds `victim,attacker` addresses stored by older versions, removes them with
    their alerts and writes an audit row each; single addresses stay."""
    import uuid

    import psycopg2

    from portal import dbmigrate
    from tests.conftest import PREFIX, create_database, drop_database

    sql = dbmigrate.SQL_DIR
    older = tmp_path / "sql"
    (older / "migrations").mkdir(parents=True)
    (older / "procedures").symlink_to(sql / "procedures")
    for migration in (sql / "migrations").glob("*.sql"):
        if migration.name < "0102":
            (older / "migrations" / migration.name).symlink_to(migration)
    name = f"{PREFIX}_m{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        dbmigrate.upgrade(url, older)
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute("""INSERT INTO billing.customers (name, email, daily_balance_email) VALUES
                           ('victim', 'victim,attacker@evil.example', true), ('fine', 'ok@x.example', true)""")
        dbmigrate.upgrade(url)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT name, email, daily_balance_email FROM billing.customers ORDER BY name")
            assert cur.fetchall() == [("fine", "ok@x.example", True), ("victim", None, False)]
            cur.execute("SELECT actor, action, details->>'email' FROM billing.audit_log WHERE entity = 'customer'")
            assert cur.fetchall() == [("migration 0102", "email_removed", "victim,attacker@evil.example")]
        conn.close()
    finally:
        drop_database(name)
