"""Ratecards and rates, providers, gateways and provider rates, routing rules."""
import re
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import Gateway, Provider, ProviderRate, Ratecard, RoutingRule, SellRate
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes

RATE = {"prefix": "336", "rate": "0.012345", "connect_fee": "0", "min_duration": "0", "increment": "30/6"}


def test_ratecard_crud(admin_client, db_session):
    assert admin_client.post("/admin/ratecards/new", data={"name": "retail", "currency": "usd"}).status_code == 302
    card = db.session.scalar(select(Ratecard).where(Ratecard.name == "retail"))
    assert card.currency == "USD"
    html = admin_client.post("/admin/ratecards/new", data={"name": "x", "currency": "EURO"}).get_data(as_text=True)
    assert "three-letter" in field_error(html, "currency")
    admin_client.post(f"/admin/ratecards/{card.id}/edit", data={"name": "retail-2026", "currency": "EUR"})
    db.session.expire_all()
    assert db.session.get(Ratecard, card.id).name == "retail-2026"
    assert "retail-2026" in admin_client.get("/admin/ratecards?q=2026").get_data(as_text=True)
    admin_client.post(f"/admin/ratecards/{card.id}/delete")
    assert db.session.get(Ratecard, card.id) is None
    assert [r.action for r in audit_rows("ratecard")] == ["create", "update", "delete"]


def test_ratecard_used_by_a_customer_cannot_be_deleted(admin_client, db_session):
    card = factories.ratecard("retail")
    factories.customer(name="acme", ratecards=[card])
    db.session.commit()
    response = admin_client.post(f"/admin/ratecards/{card.id}/delete", follow_redirects=True)
    messages = flashes(response.get_data(as_text=True))
    assert any("still assigned to customers" in m for m in messages), messages
    assert db.session.get(Ratecard, card.id) is not None and audit_rows("ratecard", "delete") == []


def test_add_change_delete_rate_with_exact_decimals(admin_client, db_session):
    card = factories.ratecard("retail")
    response = admin_client.post(f"/admin/ratecards/{card.id}/rates/new", data={
        **RATE, "valid_from": "2026-03-01T00:00", "connect_fee": "0.05"})
    assert response.status_code == 302
    rate = db.session.scalar(select(SellRate).where(SellRate.ratecard_id == card.id))
    assert (rate.rate, rate.connect_fee, rate.increment_first, rate.increment_next) == \
        (Decimal("0.012345"), Decimal("0.05"), 30, 6)
    assert rate.valid_from == datetime(2026, 3, 1, tzinfo=timezone.utc)
    page = admin_client.get(f"/admin/rates/{rate.id}/edit").get_data(as_text=True)
    assert 'value="30/6"' in page and 'value="0.012345"' in page and "Prefix 336" in page
    # a change is a new version from now: the old row is kept and ends where it starts
    response = admin_client.post(f"/admin/rates/{rate.id}/edit", data={
        "rate": "0.02", "connect_fee": "0.05", "min_duration": "0", "increment": "30/6", "blocked": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    old, new = db.session.scalars(select(SellRate).where(SellRate.ratecard_id == card.id)
                                  .order_by(SellRate.valid_from)).all()
    assert (old.id, old.rate, old.valid_to) == (rate.id, Decimal("0.012345"), new.valid_from)
    assert (new.rate, new.blocked, new.valid_to) == (Decimal("0.02"), True, None)
    html = admin_client.get(f"/admin/ratecards/{card.id}").get_data(as_text=True)
    assert "0.0200 EUR" in html and "blocked" in html and "0.012345 EUR" in html
    # a rate that has applied cannot be deleted (history), only ended
    response = admin_client.post(f"/admin/rates/{new.id}/delete", follow_redirects=True)
    assert any("end it instead" in m for m in flashes(response.get_data(as_text=True)))
    assert db.session.get(SellRate, new.id) is not None
    scheduled = factories.sell_rate(card, "44", "0.03", valid_from=datetime(2099, 1, 1, tzinfo=timezone.utc))
    db.session.commit()
    admin_client.post(f"/admin/rates/{scheduled.id}/delete")
    assert db.session.get(SellRate, scheduled.id) is None
    assert [r.action for r in audit_rows("rate")] == ["create", "new_version", "delete"]


def test_rate_validation_beside_fields(admin_client, db_session):
    card = factories.ratecard("retail")
    html = admin_client.post(f"/admin/ratecards/{card.id}/rates/new", data={
        **RATE, "prefix": "33a", "rate": "-0.01", "increment": "60/0", "min_duration": "-1",
        "valid_from": "2026-03-01T00:00", "valid_to": "2026-02-01T00:00"}).get_data(as_text=True)
    assert "Digits only" in field_error(html, "prefix")
    assert "at least 0" in field_error(html, "rate")
    assert "first/next" in field_error(html, "increment")
    assert field_error(html, "min_duration")
    assert "Must be after" in field_error(html, "valid_to")
    assert db.session.scalar(select(SellRate).where(SellRate.ratecard_id == card.id)) is None


def test_duplicate_rate_is_refused(admin_client, db_session):
    card = factories.ratecard("retail")
    factories.sell_rate(card, "336", "0.01")
    db.session.commit()
    response = admin_client.post(f"/admin/ratecards/{card.id}/rates/new", data=RATE, follow_redirects=True)
    assert any("already has a rate for this prefix" in m for m in flashes(response.get_data(as_text=True)))


def test_rates_prefix_search_state_filter_and_pagination(app, admin_client, db_session, monkeypatch):
    card = factories.ratecard("retail")
    for i in range(12):
        factories.sell_rate(card, f"44{i:02d}", "0.01")
    factories.sell_rate(card, "33", "0.02")
    factories.sell_rate(card, "336", "0.08", blocked=True)
    monkeypatch.setitem(app.config, "PAGE_SIZE", 5)
    first = admin_client.get(f"/admin/ratecards/{card.id}?q=44").get_data(as_text=True)
    assert "12 in all" in first and "<code>4400</code>" in first and "<code>4405</code>" not in first
    third = admin_client.get(f"/admin/ratecards/{card.id}?q=44&page=3").get_data(as_text=True)
    assert "<code>4411</code>" in third and "<code>4409</code>" not in third
    number = admin_client.get(f"/admin/ratecards/{card.id}?q=%2B33612345").get_data(as_text=True)
    assert "<code>33</code>" in number and "<code>336</code>" in number and "4400" not in number
    blocked = admin_client.get(f"/admin/ratecards/{card.id}?state=blocked").get_data(as_text=True)
    assert "1 in all" in blocked and "<code>336</code>" in blocked


def test_provider_gateway_and_cost_rate_crud(admin_client, db_session):
    response = admin_client.post("/admin/providers/new", data={"name": "carrier_a", "priority": "2", "currency": "EUR",
                                                               "enabled": "y"})
    provider = db.session.scalar(select(Provider).where(Provider.name == "carrier_a"))
    assert response.headers["Location"].endswith(f"/admin/providers/{provider.id}") and provider.priority == 2
    gw = {"name": "gw_a1", "host": "192.0.2.10", "port": "5060", "transport": "udp", "priority": "1",
          "strip_digits": "0", "add_prefix": "", "enabled": "y", "max_channels": "30"}
    html = admin_client.post(f"/admin/providers/{provider.id}/gateways/new", data={**gw, "register": "y", "port": "70000"})\
        .get_data(as_text=True)
    assert "needs a user name and a password" in field_error(html, "register") and field_error(html, "port")
    assert admin_client.post(f"/admin/providers/{provider.id}/gateways/new", data=gw).status_code == 302
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == "gw_a1"))
    assert gateway.provider_id == provider.id and gateway.max_channels == 30
    admin_client.post(f"/admin/gateways/{gateway.id}/edit", data={**gw, "add_prefix": "0033", "strip_digits": "2"})
    admin_client.post(f"/admin/gateways/{gateway.id}/toggle")
    db.session.expire_all()
    gateway = db.session.get(Gateway, gateway.id)
    assert (gateway.add_prefix, gateway.strip_digits, gateway.enabled) == ("0033", 2, False)
    assert admin_client.post(f"/admin/providers/{provider.id}/rates/new", data={**RATE, "increment": "1/1"}).status_code == 302
    cost = db.session.scalar(select(ProviderRate).where(ProviderRate.provider_id == provider.id))
    assert cost.rate == Decimal("0.012345") and cost.increment == "1/1"
    html = admin_client.get(f"/admin/providers/{provider.id}").get_data(as_text=True)
    assert "gw_a1" in html and "0.012345 EUR" in html
    admin_client.post(f"/admin/provider-rates/{cost.id}/end", data={})   # ends now: kept for history
    db.session.expire_all()
    assert db.session.get(ProviderRate, cost.id).valid_to is not None
    admin_client.post(f"/admin/gateways/{gateway.id}/delete")
    admin_client.post(f"/admin/providers/{provider.id}/toggle")
    db.session.expire_all()
    assert db.session.get(Provider, provider.id).enabled is False
    admin_client.post(f"/admin/providers/{provider.id}/delete")
    assert db.session.get(Provider, provider.id) is None
    assert [r.action for r in audit_rows("gateway")] == ["create", "update", "disable", "delete"]
    assert [r.action for r in audit_rows("provider")] == ["create", "disable", "delete"]
    assert [r.action for r in audit_rows("provider_rate")] == ["create", "end"]


def test_providers_list_filter(admin_client, db_session):
    factories.provider("carrier_a")
    factories.provider("carrier_b", enabled=False)
    html = admin_client.get("/admin/providers?status=disabled").get_data(as_text=True)
    assert "carrier_b" in html and "carrier_a" not in html


def test_routing_rule_crud(admin_client, db_session):
    c = factories.customer(name="acme")
    a, b = factories.provider("carrier_a"), factories.provider("carrier_b")
    html = admin_client.post("/admin/routing-rules/new", data={"customer_id": c.id, "prefix": "336"})\
        .get_data(as_text=True)
    assert "at least one provider" in field_error(html, "provider_ids")
    response = admin_client.post("/admin/routing-rules/new",
                                 data={"customer_id": c.id, "prefix": "336", "provider_ids": [a.id]})
    assert response.status_code == 302
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.customer_id == c.id))
    assert [p.name for p in rule.providers] == ["carrier_a"]
    admin_client.post(f"/admin/routing-rules/{rule.id}/edit",
                      data={"customer_id": c.id, "prefix": "3361", "provider_ids": [a.id, b.id]})
    db.session.expire_all()
    rule = db.session.get(RoutingRule, rule.id)
    assert rule.prefix == "3361" and [p.name for p in rule.providers] == ["carrier_a", "carrier_b"]
    assert "carrier_b" in admin_client.get(f"/admin/customers/{c.id}?tab=rules").get_data(as_text=True)
    assert "3361" in admin_client.get(f"/admin/routing-rules?customer_id={c.id}").get_data(as_text=True)
    db.session.commit()
    duplicate = admin_client.post("/admin/routing-rules/new", follow_redirects=True,
                                  data={"customer_id": c.id, "prefix": "3361", "provider_ids": [a.id]})
    assert any("already has a routing rule" in m for m in flashes(duplicate.get_data(as_text=True)))
    admin_client.post(f"/admin/routing-rules/{rule.id}/delete")
    assert db.session.get(RoutingRule, rule.id) is None
    assert [r.action for r in audit_rows("routing_rule")] == ["create", "update", "delete"]


def test_new_rate_and_gateway_forms_start_from_the_defaults(admin_client, db_session):
    card, provider = factories.ratecard("retail"), factories.provider("carrier_a")
    rate_page = admin_client.get(f"/admin/ratecards/{card.id}/rates/new").get_data(as_text=True)
    assert 'value="60/60"' in rate_page and re.search(r'id="min_duration"[^>]*value="0"', rate_page)
    gateway_page = admin_client.get(f"/admin/providers/{provider.id}/gateways/new").get_data(as_text=True)
    assert 'value="5060"' in gateway_page
