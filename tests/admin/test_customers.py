"""Customers: CRUD, validation beside fields, audit rows, delete refusal, list search and
pagination, detail page funds and holds, ledger forms with exact decimals."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import CallHold, Customer, CustomerRatecard, LedgerEntry
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes

FORM = {"name": "acme", "billing_type": "prepaid", "currency": "EUR", "credit_limit": "0", "lcr_strategy": "cost",
        "enabled": "y", "ratecard_1": "0", "ratecard_2": "0", "ratecard_3": "0"}


def _customer(name):
    return db.session.scalar(select(Customer).where(Customer.name == name))


def test_create_customer_with_opening_balance_and_ratecards(admin_client, db_session):
    retail, backup = factories.ratecard("retail"), factories.ratecard("backup")
    response = admin_client.post("/admin/customers/new", data={
        **FORM, "opening_balance": "12.345678", "ratecard_1": str(backup.id), "ratecard_2": str(retail.id),
        "email": "Billing@Acme.example", "max_calls": "7", "low_balance_alert": "2.50"})
    assert response.status_code == 302
    c = _customer("acme")
    assert c.balance == Decimal("12.345678") and c.max_calls == 7 and c.low_balance_alert == Decimal("2.50")
    links = db.session.scalars(select(CustomerRatecard).where(CustomerRatecard.customer_id == c.id)
                               .order_by(CustomerRatecard.priority)).all()
    assert [(link.ratecard_id, link.priority) for link in links] == [(backup.id, 1), (retail.id, 2)]
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.customer_id == c.id))
    assert entry.kind == "initial" and entry.amount == Decimal("12.345678")
    [row] = audit_rows("customer", "create")
    assert row.entity_id == str(c.id) and row.actor == "admin@example.net"
    assert row.details["opening_balance"] == "12.345678" and row.details["ratecards"] == [backup.id, retail.id]


def test_validation_errors_are_shown_beside_the_fields(admin_client, db_session):
    card = factories.ratecard()
    response = admin_client.post("/admin/customers/new", data={
        **FORM, "name": "bad name!", "credit_limit": "5", "opening_balance": "1.1234567", "email": "nope",
        "ratecard_1": str(card.id), "ratecard_3": str(card.id), "tax_rate": "1.5"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Only letters, digits" in field_error(html, "name")
    assert "prepaid customer has no credit limit" in field_error(html, "credit_limit")
    assert "more than 6 decimal places" in field_error(html, "opening_balance")
    assert field_error(html, "email")
    assert "chosen twice" in field_error(html, "ratecard_3")
    assert "less than 1" in field_error(html, "tax_rate")
    assert field_error(html, "currency") is None
    assert _customer("bad name!") is None and audit_rows("customer") == []


def test_duplicate_name_is_refused_with_a_clear_message(admin_client, db_session):
    factories.customer(name="acme")
    db.session.commit()  # as if created earlier: a refused change rolls back only its own work
    response = admin_client.post("/admin/customers/new", data=FORM, follow_redirects=True)
    assert "A customer with this name already exists." in flashes(response.get_data(as_text=True))
    assert db.session.scalar(select(Customer.id).where(Customer.name == "acme")) is not None


def test_edit_customer_changes_fields_and_ratecards_and_audits_the_difference(admin_client, db_session):
    a, b = factories.ratecard("a"), factories.ratecard("b")
    c = factories.customer(name="acme", ratecards=[a, b])
    page = admin_client.get(f"/admin/customers/{c.id}/edit").get_data(as_text=True)
    assert 'id="opening_balance"' not in page and f'<option selected value="{a.id}">' in page
    response = admin_client.post(f"/admin/customers/{c.id}/edit", data={
        **FORM, "billing_type": "postpaid", "credit_limit": "250.50", "ratecard_1": str(b.id), "ratecard_2": str(a.id)})
    assert response.status_code == 302
    db.session.expire_all()
    c = db.session.get(Customer, c.id)
    assert c.billing_type == "postpaid" and c.credit_limit == Decimal("250.50")
    assert [(link.ratecard_id, link.priority) for link in c.ratecard_links] == [(b.id, 1), (a.id, 2)]
    [row] = audit_rows("customer", "update")
    assert row.details["billing_type"] == ["prepaid", "postpaid"]
    assert [Decimal(v) for v in row.details["credit_limit"]] == [0, Decimal("250.50")]
    assert row.details["ratecards"] == [b.id, a.id]
    assert "name" not in row.details


def test_disable_and_enable(admin_client, db_session):
    c = factories.customer(name="acme")
    admin_client.post(f"/admin/customers/{c.id}/toggle")
    db.session.expire_all()
    assert db.session.get(Customer, c.id).enabled is False
    admin_client.post(f"/admin/customers/{c.id}/toggle")
    db.session.expire_all()
    assert db.session.get(Customer, c.id).enabled is True
    assert [r.action for r in audit_rows("customer")] == ["disable", "enable"]


def test_delete_is_refused_while_ledger_entries_exist(admin_client, db_session):
    c = factories.customer(name="acme", balance="5")
    db.session.commit()
    response = admin_client.post(f"/admin/customers/{c.id}/delete", follow_redirects=True)
    messages = flashes(response.get_data(as_text=True))
    assert any("has ledger entries" in m and "disable the customer instead" in m for m in messages), messages
    assert db.session.get(Customer, c.id) is not None
    assert audit_rows("customer", "delete") == []


def test_delete_customer_without_history(admin_client, db_session, catalogue):
    c = factories.customer(name="acme")
    factories.endpoint(c, catalogue["standard"])
    response = admin_client.post(f"/admin/customers/{c.id}/delete")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/customers")
    assert db.session.get(Customer, c.id) is None
    [row] = audit_rows("customer", "delete")
    assert row.details == {"name": "Customer acme"}


def test_list_search_filter_sort_and_pagination(app, admin_client, db_session, monkeypatch):
    for i in range(5):
        factories.customer(name=f"shop{i}", balance=str(i + 1))
    factories.customer(name="other", billing_type="postpaid", credit_limit=Decimal(10))
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    html = admin_client.get("/admin/customers?q=shop&sort=-balance").get_data(as_text=True)
    assert html.index("shop4") < html.index("shop3") and "shop2" not in html and "other" not in html
    assert "5 in all" in html and "?q=shop&amp;sort=-balance&amp;page=2" in html.replace("sort=-balance&amp;q=shop", "q=shop&amp;sort=-balance")
    page3 = admin_client.get("/admin/customers?q=shop&sort=-balance&page=3").get_data(as_text=True)
    assert "shop0" in page3 and "shop1" not in page3
    postpaid = admin_client.get("/admin/customers?billing=postpaid").get_data(as_text=True)
    assert "other" in postpaid and "shop1" not in postpaid
    empty = admin_client.get("/admin/customers?q=nothing-like-this").get_data(as_text=True)
    assert "No customer matches these filters." in empty


def test_empty_list_says_what_to_do(admin_client, db_session):
    assert "Create the first customer" in admin_client.get("/admin/customers").get_data(as_text=True)


def test_detail_shows_balance_holds_and_available_funds(admin_client, db_session, catalogue):
    c = factories.customer(name="acme", balance="10", billing_type="postpaid", credit_limit=Decimal("5"))
    ep = factories.endpoint(c, catalogue["standard"])
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    for uuid, amount in (("call-one", "1.25"), ("call-two", "0.50")):
        db.session.add(CallHold(call_uuid=uuid, customer_id=c.id, endpoint_id=ep.id, amount=Decimal(amount),
                                sell_rate=Decimal("0.02"), max_duration=3600, destination="33123", expires_at=expires))
    db.session.flush()
    html = admin_client.get(f"/admin/customers/{c.id}").get_data(as_text=True)
    assert "Calls in progress (2)" in html and "call-one" in html and "call-two" in html
    assert "1.75 EUR" in html          # held
    assert "13.25 EUR" in html         # 10 + 5 - 1.75
    listing = admin_client.get("/admin/customers").get_data(as_text=True)
    assert "13.25 EUR" in listing


def _post_ledger(client, c, kind, amount, **extra):
    return client.post(f"/admin/customers/{c.id}/ledger", data={"kind": kind, "amount": amount, **extra})


def test_ledger_forms_change_the_balance_exactly(admin_client, db_session):
    c = factories.customer(name="acme")
    assert _post_ledger(admin_client, c, "topup", "10.10", reference="TU-1").status_code == 302
    assert _post_ledger(admin_client, c, "payment", "0.2").status_code == 302
    assert _post_ledger(admin_client, c, "credit_note", "0.000001", reference="CN-7").status_code == 302
    assert _post_ledger(admin_client, c, "adjustment", "-3.300001", note="goodwill reversal").status_code == 302
    db.session.expire_all()
    assert db.session.get(Customer, c.id).balance == Decimal("7.000000")
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == c.id).order_by(LedgerEntry.id)).all()
    assert [(e.kind, e.amount) for e in entries] == [
        ("topup", Decimal("10.10")), ("payment", Decimal("0.2")), ("credit_note", Decimal("0.000001")),
        ("adjustment", Decimal("-3.300001"))]
    assert entries[0].created_by == "admin@example.net" and entries[2].reference == "CN-7"
    assert [r.details["kind"] for r in audit_rows("customer", "ledger")] == ["topup", "payment", "credit_note", "adjustment"]


def test_ledger_form_refuses_bad_amounts_beside_the_field(admin_client, db_session):
    c = factories.customer(name="acme")
    cases = [("topup", "-5", "positive amount"), ("payment", "0", "must not be zero"),
             ("credit_note", "1.0000001", "more than 6 decimal places"), ("topup", "ten", "is not an amount"),
             ("adjustment", "", "Enter an amount")]
    for kind, amount, message in cases:
        response = _post_ledger(admin_client, c, kind, amount)
        assert response.status_code == 400, (kind, amount)
        assert message in field_error(response.get_data(as_text=True), "amount"), (kind, amount)
    db.session.expire_all()
    assert db.session.get(Customer, c.id).balance == 0
    assert audit_rows("customer", "ledger") == []


def test_ledger_shows_running_balance_newest_first_with_pagination(admin_client, db_session):
    c = factories.customer(name="acme")
    for amount in ("1.5", "2.25", "-0.75"):
        _post_ledger(admin_client, c, "adjustment", amount)
    html = admin_client.get(f"/admin/customers/{c.id}?tab=ledger&view=entries").get_data(as_text=True)
    ledger = html[html.index('id="ledger"'):]
    # newest first: -0.75 leaves 3.00, then 2.25 leaves 3.75, then 1.5 leaves 1.50
    assert ledger.index("3.00 EUR") < ledger.index("3.75 EUR") < ledger.index("1.50 EUR")
    for _ in range(25):
        factories.topup(c, "1")
    page2 = admin_client.get(f"/admin/customers/{c.id}?tab=ledger&view=entries&page=2").get_data(as_text=True)
    assert "28 in all" in page2 and "1.50 EUR" in page2[page2.index('id="ledger"'):]


def test_ledger_keeps_every_significant_decimal_in_the_title(admin_client, db_session):
    c = factories.customer(name="acme", balance="1")
    factories.topup(c, "-0.012345", kind="call")
    html = admin_client.get(f"/admin/customers/{c.id}?tab=ledger&view=entries").get_data(as_text=True)
    ledger = html[html.index('id="ledger"'):]
    # shown at the currency's precision, every decimal in the title (docs/rounding.md)
    assert 'title="exact: -0.012345 EUR">-0.01 EUR<' in ledger and 'title="exact: 0.987655 EUR">0.99 EUR<' in ledger
    assert ">1.00 EUR<" in ledger
