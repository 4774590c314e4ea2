"""route_call refuses a call with exactly one row, the right reason and cause, in the
contract's order, and never raises on bad input."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests import factories
from tests.routing.conftest import ACME_IP, holds, rejected, route

CAUSES = {
    "invalid_number": "INVALID_NUMBER_FORMAT",
    "unknown_source": "CALL_REJECTED",
    "account_disabled": "CALL_REJECTED",
    "unknown_destination": "NO_ROUTE_DESTINATION",
    "destination_not_allowed": "OUTGOING_CALL_BARRED",
    "no_rate": "NO_ROUTE_DESTINATION",
    "too_many_calls": "NORMAL_CIRCUIT_CONGESTION",
    "spend_limit": "CALL_REJECTED",
    "insufficient_funds": "CALL_REJECTED",
    "negative_margin": "NO_ROUTE_DESTINATION",
    "no_route": "NO_ROUTE_DESTINATION",
}


def refused(pg, destination, reason, **kw):
    rows = route(pg, destination, **kw)
    assert rejected(rows) == reason
    assert rows[0]["hangup_cause"] == CAUSES[reason]
    return rows[0]


def test_an_ordinary_call_is_routed_and_holds_money(world, pg):
    rows = route(pg, "33123456789")
    assert [r["gateway"] for r in rows] == ["carrier_b_gw1", "carrier_a_gw1"]  # cost: 0.008 before 0.010
    first = rows[0]
    assert first["ok"] is True and first["reason"] is None and first["hangup_cause"] is None
    assert first["customer_id"] == world.customer.id and first["endpoint_id"] == world.ip_endpoint.id
    assert first["destination"] == "33123456789" and first["sell_prefix"] == "33"
    assert first["sell_rate"] == Decimal("0.020000") and first["cost_rate"] == Decimal("0.008000")
    assert first["dial_string"] == "sofia/gateway/carrier_b_gw1/33123456789"
    assert first["provider_id"] == world.providers["carrier_b"].id
    assert len(holds(pg)) == 1


@pytest.mark.parametrize("destination", [
    None, "", "+", "++33123", "abc", "33 123", "33-123", "3312345678901234567890",  # 22 digits
    "33123'; DROP TABLE billing.customers; --", "33123\n", "\n33123", "33%", "33_", ".*",
    "\u0663\u0663123",  # Arabic-Indic digits are not [0-9]
    "sip:33123@example.net",
])
def test_invalid_numbers_are_refused_before_anything_else(world, pg, destination):
    row = refused(pg, destination, "invalid_number", ip="203.0.113.99")  # unknown source too: number first
    assert row["customer_id"] is None
    assert holds(pg) == []


def test_twenty_digits_and_a_plus_are_valid(world, pg):
    rows = route(pg, "+" + "4" * 20)
    assert rows[0]["ok"] and rows[0]["destination"] == "4" * 20
    refused(pg, "+" + "4" * 21, "invalid_number")


def test_unknown_source(world, pg):
    refused(pg, "33123456789", "unknown_source", ip="203.0.113.9")
    refused(pg, "33123456789", "unknown_source", ip=None)
    refused(pg, "33123456789", "unknown_source", ip="2001:db8::1")
    # a SIP user that is not ours is refused even from a known IP: no fall-back
    refused(pg, "33123456789", "unknown_source", ip=ACME_IP, sip_user="mallory")
    refused(pg, "33123456789", "unknown_source", sip_user="x' OR '1'='1")


@pytest.mark.parametrize("uuid", [None, "", "   ", "x" * 256])
def test_a_call_without_a_usable_uuid_is_refused_as_unknown_source(world, pg, uuid):
    refused(pg, "33123456789", "unknown_source", uuid=uuid)
    assert holds(pg) == []


def test_preview_needs_no_uuid(world, pg):
    rows = route(pg, "33123456789", uuid=None, preview=True)
    assert rows[0]["ok"] is True


def test_empty_sip_user_means_ip_authentication(world, pg):
    assert route(pg, "33123456789", sip_user="")[0]["endpoint_id"] == world.ip_endpoint.id


def test_sip_user_wins_over_ip(world, pg):
    rows = route(pg, "33123456789", sip_user="acme100", ip="203.0.113.9")
    assert rows[0]["ok"] and rows[0]["endpoint_id"] == world.sip_endpoint.id


def test_longest_cidr_wins(world, pg):
    # Nested ranges belong to one customer (migration 0090 refuses another customer's).
    wide = factories.endpoint(world.customer, world.perms["all"], ip="198.51.100.0/24", name="acme-net")
    assert route(pg, "33123456789")[0]["endpoint_id"] == world.ip_endpoint.id
    assert route(pg, "33123456789", ip="198.51.100.8")[0]["endpoint_id"] == wide.id


def test_account_disabled(world, pg, db_session):
    world.customer.enabled = False
    db_session.flush()
    row = refused(pg, "33123456789", "account_disabled")
    assert row["customer_id"] == world.customer.id
    refused(pg, "33123456789", "account_disabled", sip_user="acme100")


def test_disabled_endpoint(world, pg, db_session):
    world.ip_endpoint.enabled = False
    world.sip_endpoint.enabled = False
    db_session.flush()
    refused(pg, "33123456789", "account_disabled")
    refused(pg, "33123456789", "account_disabled", sip_user="acme100")


def test_a_disabled_endpoint_does_not_shadow_an_enabled_wider_one(world, pg, db_session):
    world.ip_endpoint.enabled = False
    wide = factories.endpoint(world.customer, world.perms["std"], ip="198.51.100.0/24", name="acme-net")
    db_session.flush()
    assert route(pg, "33123456789")[0]["endpoint_id"] == wide.id


def test_unknown_destination(world, pg):
    row = refused(pg, "49301234567", "unknown_destination")
    assert row["destination"] == "49301234567" and row["customer_id"] == world.customer.id


def test_stripping_every_digit_leaves_an_unknown_destination(world, pg, db_session):
    world.ip_endpoint.strip_digits = 20
    db_session.flush()
    refused(pg, "33123456789", "unknown_destination")


def test_destination_not_allowed(world, pg):
    refused(pg, "33891234567", "destination_not_allowed")           # IP endpoint: std has no premium
    assert route(pg, "33891234567", sip_user="acme100")[0]["reason"] != "destination_not_allowed"


def test_no_rate(world, pg):
    factories.destination("49", world.weights["intl"], "Germany")
    refused(pg, "49301234567", "no_rate")


def test_no_rate_when_the_only_rate_is_blocked_or_out_of_its_window(world, pg):
    now = datetime.now(timezone.utc)
    factories.destination("49", world.weights["intl"], "Germany")
    factories.destination("41", world.weights["intl"], "Switzerland")
    factories.destination("43", world.weights["intl"], "Austria")
    factories.sell_rate(world.card, "49", "0.01", blocked=True)
    factories.sell_rate(world.card, "41", "0.01", valid_from=now + timedelta(hours=1))
    factories.sell_rate(world.card, "43", "0.01", valid_to=now - timedelta(hours=1))
    for number in ("49301234567", "41441234567", "43123456789"):
        refused(pg, number, "no_rate")


def test_too_many_calls_customer(world, pg, db_session):
    world.customer.max_calls = 2
    db_session.flush()
    assert route(pg, "33123456789", uuid="a")[0]["ok"]
    assert route(pg, "33123456789", uuid="b")[0]["ok"]
    refused(pg, "33123456789", "too_many_calls", uuid="c")
    # the same uuid again replaces its own hold: not a third call
    assert route(pg, "33123456789", uuid="b")[0]["ok"]
    # the limit counts every endpoint of the customer
    refused(pg, "33123456789", "too_many_calls", uuid="d", sip_user="acme100")


def test_too_many_calls_endpoint(world, pg, db_session):
    world.ip_endpoint.max_calls = 1
    db_session.flush()
    assert route(pg, "33123456789", uuid="a")[0]["ok"]
    refused(pg, "33123456789", "too_many_calls", uuid="b")
    assert route(pg, "33123456789", uuid="c", sip_user="acme100")[0]["ok"]   # other endpoint


def test_max_calls_zero_refuses_every_call(world, pg, db_session):
    world.customer.max_calls = 0
    db_session.flush()
    refused(pg, "33123456789", "too_many_calls")


def _month_spend(pg, endpoint, month, amount):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.endpoint_month_spend (endpoint_id, month, amount) VALUES (%s, %s, %s)",
                    (endpoint.id, month, amount))


def test_spend_limit_reached_this_month(world, pg, db_session):
    world.ip_endpoint.spend_limit_month = Decimal("5.00")
    db_session.flush()
    this_month = date.today().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    _month_spend(pg, world.ip_endpoint, last_month, "100")          # last month does not count
    assert route(pg, "33123456789", preview=True)[0]["ok"]
    _month_spend(pg, world.ip_endpoint, this_month, "5.00")
    refused(pg, "33123456789", "spend_limit")
    assert route(pg, "33123456789", sip_user="acme100")[0]["ok"]     # limit is per endpoint


def test_spend_limit_room_caps_the_call_and_counts_holds(world, pg, db_session):
    world.ip_endpoint.spend_limit_month = Decimal("0.10")   # 5 minutes at 0.02
    db_session.flush()
    _month_spend(pg, world.ip_endpoint, date.today().replace(day=1), "0.04")
    first = route(pg, "33123456789", uuid="a")[0]
    assert first["ok"] and first["max_duration"] == 180             # 0.06 of room left
    refused(pg, "33123456789", "spend_limit", uuid="b")             # the hold used the room


def test_insufficient_funds(world, pg):
    broke = factories.customer("broke", balance="0.01", ratecards=[world.card])
    factories.endpoint(broke, world.perms["std"], ip="192.0.2.200/32", name="broke-pbx")
    row = refused(pg, "33123456789", "insufficient_funds", ip="192.0.2.200")  # 0.02 for the first minute
    assert row["customer_id"] == broke.id and row["sell_rate"] == Decimal("0.020000")


def test_postpaid_credit_counts_as_funds(world, pg):
    post = factories.customer("post", ratecards=[world.card], billing_type="postpaid", credit_limit=Decimal("1"))
    factories.endpoint(post, world.perms["std"], ip="192.0.2.201/32", name="post-pbx")
    rows = route(pg, "33123456789", ip="192.0.2.201")
    assert rows[0]["ok"] and rows[0]["max_duration"] == 3000        # 1.00 / 0.02 per minute


def test_negative_margin(world, pg, db_session):
    # 44: sell 0.03; make both carriers cost more
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.provider_rates SET rate = 0.05 WHERE prefix = '44'")
    refused(pg, "44201234567", "negative_margin")
    world.customer.allow_negative_margin = True
    db_session.flush()
    assert len(route(pg, "44201234567")) == 2


def test_only_the_negative_margin_routes_are_dropped(world, pg):
    # 336: sell 0.08; carrier_a 0.05, carrier_b 0.06 -> raise b above the sell rate
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.provider_rates SET rate = 0.09 WHERE prefix = '336' AND provider_id = %s",
                    (world.providers["carrier_b"].id,))
    assert [r["gateway"] for r in route(pg, "33612345678")] == ["carrier_a_gw1"]


def test_equal_cost_is_not_a_negative_margin(world, pg):
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.provider_rates SET rate = 0.03 WHERE prefix = '44'")
    assert len(route(pg, "44201234567")) == 2


def test_no_route(world, pg, db_session):
    factories.destination("49", world.weights["intl"], "Germany")
    factories.sell_rate(world.card, "49", "0.05")
    refused(pg, "49301234567", "no_route")                          # no provider has a rate
    factories.provider_rate(world.providers["carrier_a"], "49", "0.01")
    world.providers["carrier_a"].enabled = False
    db_session.flush()
    refused(pg, "49301234567", "no_route")                          # its provider is disabled
    world.providers["carrier_a"].enabled = True
    world.gateways["carrier_a_gw1"].enabled = False
    db_session.flush()
    refused(pg, "49301234567", "no_route")                          # no enabled gateway
    world.gateways["carrier_a_gw1"].enabled = True
    db_session.flush()
    assert route(pg, "49301234567")[0]["ok"]


def test_reasons_are_checked_in_the_contract_order(world, pg, db_session):
    """A call wrong in several ways gets the first reason of the list."""
    factories.destination("49", world.weights["intl"], "Germany")   # no rate, no route
    world.customer.max_calls = 0                                     # too many calls
    db_session.flush()
    refused(pg, "4930", "no_rate")                                   # no_rate before too_many_calls
    refused(pg, "33891234567", "destination_not_allowed")            # before no_rate checks
    refused(pg, "77", "unknown_destination")
    refused(pg, "33123456789", "too_many_calls")                     # before funds
    world.customer.max_calls = None
    world.ip_endpoint.spend_limit_month = Decimal("0")
    db_session.flush()
    refused(pg, "33123456789", "spend_limit")
    world.customer.enabled = False
    db_session.flush()
    refused(pg, "77", "account_disabled")                            # before the destination
    refused(pg, "7x", "invalid_number")                              # before everything


def test_funds_before_margin_and_routes(world, pg):
    broke = factories.customer("broke2", balance="0", ratecards=[world.card])
    factories.endpoint(broke, world.perms["std"], ip="192.0.2.202/32", name="broke2-pbx")
    with pg.cursor() as cur:
        cur.execute("DELETE FROM billing.provider_rates")
    refused(pg, "33123456789", "insufficient_funds", ip="192.0.2.202")
    refused(pg, "33123456789", "no_route")


def test_ipv6_host_and_network_endpoints(world, pg):
    host = factories.endpoint(world.customer, world.perms["std"], ip="2001:db8::7/128", name="acme-v6-host")
    net = factories.endpoint(world.customer, world.perms["std"], ip="2001:db8::/64", name="acme-v6-net")
    assert route(pg, "33123456789", ip="2001:db8::7", uuid="a")[0]["endpoint_id"] == host.id
    assert route(pg, "33123456789", ip="2001:db8::8", uuid="b")[0]["endpoint_id"] == net.id
    refused(pg, "33123456789", "unknown_source", ip="2001:db9::1", uuid="c")
