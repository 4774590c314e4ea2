"""Loading good files: the PROVISIONING.md example, upserts, exact decimals, passwords."""
from __future__ import annotations

from decimal import Decimal

from portal.extensions import db
from portal.models import Customer, Endpoint, LedgerEntry, ProviderRate, Ratecard, SellRate, Settings, User
from portal.provisioning import load_file
from portal.provisioning.fields import Number
from portal.provisioning.validate import validate
from portal.provisioning.yamlio import parse
from portal.security import verify_password
from sqlalchemy import select

from .conftest import EXAMPLE, example_without_hashing


def _rates(card_name: str) -> dict[str, SellRate]:
    card = db.session.scalar(select(Ratecard).where(Ratecard.name == card_name))
    return {r.prefix: r for r in db.session.scalars(select(SellRate).where(SellRate.ratecard_id == card.id))}


def test_the_provisioning_example_loads(db_session, pg):
    summary = load_file(EXAMPLE)

    assert "customers: 1 created" in summary.lines()
    acme = db_session.scalar(select(Customer).where(Customer.name == "acme"))
    assert acme.balance == Decimal("10.00") and acme.billing_type == "prepaid" and acme.max_calls == 10
    assert acme.low_balance_alert == Decimal("2.00") and acme.lcr_strategy == "cost"
    ledger = db_session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == acme.id)).all()
    assert [(e.kind, e.amount) for e in ledger] == [("initial", Decimal("10.00"))]
    assert [(link.ratecard.name, link.priority) for link in acme.ratecard_links] == [("retail", 1)]
    assert [(r.prefix, [p.name for p in r.providers]) for r in acme.routing_rules] == [("336", ["carrier_a"])]
    endpoints = {e.name: e for e in acme.endpoints}
    assert endpoints["acme-pbx"].ip == "198.51.100.7/32" and endpoints["acme-pbx"].permission.name == "standard"
    assert endpoints["acme-100"].password == "s3cret-pass"  # SIP passwords stored as given (0001)
    assert [w.name for w in endpoints["acme-100"].permission.weights] == ["local"]
    rates = _rates("retail")
    assert rates["33"].rate == Decimal("0.0200") and (rates["33"].increment_first, rates["33"].increment_next) == (60, 60)
    assert rates["33"].valid_from.isoformat().startswith("2026-01-01") and rates["33"].valid_to is None
    assert rates["336"].rate == Decimal("0.0800") and rates["336"].increment == "30/6"
    cost = {r.prefix: r for r in db_session.scalars(select(ProviderRate))}
    assert cost["33"].rate == Decimal("0.0050") and cost["336"].increment == "1/1"
    user = db_session.scalar(select(User).where(User.email == "ops@acme.example"))
    assert user.role == "customer" and user.customer_id == acme.id
    assert user.password_hash.startswith("$argon2id$") and verify_password(user.password_hash, "change-me-please")


def test_loading_the_same_file_twice_changes_nothing(db_session, load, counts):
    text = example_without_hashing()
    load(text)
    before = counts()
    hash_before = db_session.scalar(select(User.password_hash))
    summary = load(text)
    assert all(", " not in line and line.endswith("unchanged") for line in summary.lines()), summary.lines()
    after = counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert after["audit_log"] == before["audit_log"] + 1  # every load is audited
    assert db_session.scalar(select(User.password_hash)) == hash_before  # not rehashed


def test_upsert_updates_existing_entries_and_keeps_absent_keys(db_session, base, load):
    summary = load("""
        destinations:
          - {prefix: "33", name: France Fixed, weight: local}
        customers:
          - name: acme
            balance: "99.00"          # only applied at creation
            max_calls: null
            billing: postpaid
            credit_limit: "50"
            endpoints:
              - {name: acme-pbx, auth: ip, ip: 198.51.100.8/32, permission: standard}
    """)
    assert "customers: 1 updated" in summary.lines()
    assert "endpoints: 1 updated" in summary.lines()
    assert "destinations: 1 updated" in summary.lines()
    acme = db_session.scalar(select(Customer).where(Customer.name == "acme"))
    db_session.refresh(acme)
    assert acme.balance == Decimal("10.00")
    assert acme.max_calls is None and acme.billing_type == "postpaid" and acme.credit_limit == Decimal("50")
    assert acme.email == "billing@acme.example"  # absent: unchanged
    pbx = db_session.scalar(select(Endpoint).where(Endpoint.name == "acme-pbx"))
    assert pbx.ip == "198.51.100.8/32" and pbx.max_calls == 5  # max_calls absent: unchanged
    assert len(acme.endpoints) == 2  # endpoints not listed are kept
    assert [link.ratecard.name for link in acme.ratecard_links] == ["retail"]  # list absent: unchanged


def test_a_rate_list_given_replaces_the_stored_one(db_session, base, load):
    summary = load("""
        ratecards:
          - name: retail
            rates:
              - {prefix: "33", rate: "0.0200", increment: 60/60, valid_from: 2026-01-01}
              - {prefix: "337", rate: "0.0900"}
        providers:
          - name: carrier_a          # no rates key: its rates are kept
    """)
    assert "sell rates: 1 created, 1 unchanged, 1 deleted" in summary.lines()
    assert sorted(_rates("retail")) == ["33", "337"]
    assert db_session.query(ProviderRate).count() == 2
    load("ratecards: [{name: retail, rates: []}]")
    assert _rates("retail") == {}


def test_lists_under_an_entry_replace_links(db_session, base, load):
    load("""
        ratecards: [{name: promo}]
        providers: [{name: carrier_b}]
        permissions:
          - {name: standard, weights: [local]}
        customers:
          - name: acme
            ratecards: [{name: promo}, {name: retail}]
            routing_rules:
              - {prefix: "33", providers: [carrier_b, carrier_a]}
    """)
    acme = db_session.scalar(select(Customer).where(Customer.name == "acme"))
    assert [(link.ratecard.name, link.priority) for link in acme.ratecard_links] == [("promo", 1), ("retail", 2)]
    assert [(r.prefix, [p.name for p in r.providers]) for r in acme.routing_rules] == [("33", ["carrier_a", "carrier_b"])]
    pbx = db_session.scalar(select(Endpoint).where(Endpoint.name == "acme-pbx"))
    assert [w.name for w in pbx.permission.weights] == ["local"]


def test_yaml_numbers_are_read_as_exact_decimals(db_session, load):
    document = parse("rate: 0.02\nprefix: 0044\nbig: 1_000.5")
    assert document == {"rate": "0.02", "prefix": "0044", "big": "1_000.5"}
    assert all(isinstance(v, Number) for v in document.values())
    config = validate(parse("""
        ratecards:
          - name: r
            rates: [{prefix: 0044, rate: 0.1, connect_fee: 0.000001}]
        customers: [{name: c, balance: 0.3}]
    """.replace("\n        ", "\n")))
    row = config.ratecards[0]["rates"].rows[0]
    assert row["prefix"] == "0044"
    assert row["rate"] == Decimal("0.1") and str(row["rate"]) == "0.1"
    assert row["connect_fee"] == Decimal("0.000001")
    assert config.customers[0]["balance"] == Decimal("0.3")  # float 0.3 would be 0.299999...

    load("""
        weights: [{name: w}]
        ratecards: [{name: r, rates: [{prefix: "44", rate: 0.123456}]}]
        customers: [{name: c, billing: postpaid, balance: -0.1, credit_limit: 0.7}]
    """)
    assert _rates("r")["44"].rate == Decimal("0.123456")
    c = db_session.scalar(select(Customer).where(Customer.name == "c"))
    assert c.balance == Decimal("-0.1") and c.credit_limit == Decimal("0.7")


def test_portal_passwords_are_hashed_and_rehashed_only_when_changed(db_session, load):
    users = "customers: [{name: acme, users: [{email: Ops@Acme.Example, password: %s}]}]"
    load(users % "first-password")
    first = db_session.scalar(select(User.password_hash))
    assert first.startswith("$argon2id$") and "first-password" not in first
    load(users % "first-password")
    assert db_session.scalar(select(User.password_hash)) == first
    load(users % "second-password")
    db_session.expire_all()
    user = db_session.scalar(select(User))
    assert user.email == "ops@acme.example" and verify_password(user.password_hash, "second-password")
    second = user.password_hash
    load("customers: [{name: acme, users: [{email: ops@acme.example, active: false}]}]")
    db_session.refresh(user)
    assert user.active is False and user.password_hash == second


def test_settings_and_default_currency(db_session, load):
    load("""
        currency: USD
        settings: {sip_domain: sip.operator.example, max_call_seconds: 7200, default_tax_rate: "0.2"}
        ratecards: [{name: usd_card}, {name: eur_card, currency: EUR}]
        customers: [{name: yankee}]
    """)
    settings = db_session.get(Settings, True)
    assert (settings.currency, settings.sip_domain, settings.max_call_seconds) == ("USD", "sip.operator.example", 7200)
    assert settings.default_tax_rate == Decimal("0.2")
    currencies = dict(db_session.execute(select(Ratecard.name, Ratecard.currency)).all())
    assert currencies == {"usd_card": "USD", "eur_card": "EUR"}
    assert db_session.scalar(select(Customer.currency).where(Customer.name == "yankee")) == "USD"


def test_media_options_and_digit_strings(db_session, load):
    load("""
        permissions: [{name: p}]
        providers:
          - name: carrier
            gateways:
              - {name: gw1, host: 192.0.2.1, add_prefix: 0011, bypass_media: true, ignore_early_media: true,
                 register: true, username: trunk, password: x}
        customers:
          - name: c
            endpoints:
              - {name: e1, auth: ip, ip: 2001:db8::/48, permission: p, add_prefix: 00, bypass_media: true}
    """)
    from portal.models import Gateway

    gateway = db_session.scalar(select(Gateway))
    assert gateway.add_prefix == "0011" and gateway.bypass_media and gateway.ignore_early_media and gateway.register
    endpoint = db_session.scalar(select(Endpoint))
    assert endpoint.add_prefix == "00" and endpoint.bypass_media and not endpoint.ignore_early_media
    assert endpoint.ip == "2001:db8::/48"
