"""Carriers in another currency than the customer's (0110): ranked and checked for
negative margin on their cost converted into the customer's currency, not offered
without a valid exchange rate. route_call's cost_rate stays the provider's own rate
(CONTRACT 1); route_preview adds the currency, the rate and the converted cost."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tests import factories
from tests.routing.conftest import gateways, rejected, route

NOW = datetime.now(timezone.utc)
YESTERDAY = NOW - timedelta(days=1)


def test_ranking_compares_converted_costs(world, pg):
    # 33: carrier_b 0.0080 EUR, carrier_a 0.0100 EUR; a USD carrier at 0.0090 USD looks
    # dearer than carrier_b unconverted, but 0.0090 x 0.80 = 0.0072 EUR is the cheapest.
    world.provider("carrier_usd", rates={"33": "0.0090"}, currency="USD")
    factories.exchange_rate("USD", "EUR", "0.80", YESTERDAY)
    rows = route(pg, "33123456789")
    assert gateways(rows) == ["carrier_usd_gw1", "carrier_b_gw1", "carrier_a_gw1"]
    assert rows[0]["cost_rate"] == Decimal("0.0090")   # CONTRACT 1: the provider's own rate


def test_a_higher_exchange_rate_moves_the_carrier_down(world, pg, db_session):
    world.provider("carrier_usd", rates={"33": "0.0090"}, currency="USD")
    fx = factories.exchange_rate("USD", "EUR", "1.00", YESTERDAY)   # 0.0090 EUR: between b and a
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_usd_gw1", "carrier_a_gw1"]
    fx.rate = Decimal("1.20")                                       # 0.0108 EUR: last
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1", "carrier_usd_gw1"]


def test_no_valid_rate_means_not_offered(world, pg):
    world.provider("carrier_sek", rates={"33": "0.0010"}, currency="SEK")
    factories.exchange_rate("EUR", "SEK", "11.5", YESTERDAY)                        # wrong direction
    factories.exchange_rate("SEK", "EUR", "0.0871", NOW + timedelta(hours=1))       # not yet valid
    factories.exchange_rate("SEK", "EUR", "0.0871", NOW - timedelta(days=9), NOW - timedelta(days=2))   # ended
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_only_route_without_rate_is_no_route(world, pg, db_session):
    for name in ("carrier_a", "carrier_b"):
        world.providers[name].enabled = False
    world.provider("carrier_sek", rates={"33": "0.0010"}, currency="SEK")
    db_session.flush()
    assert rejected(route(pg, "33123456789")) == "no_route"
    factories.exchange_rate("SEK", "EUR", "0.0871", YESTERDAY)
    assert gateways(route(pg, "33123456789")) == ["carrier_sek_gw1"]


def test_negative_margin_judged_on_the_converted_cost(world, pg, db_session):
    for name in ("carrier_a", "carrier_b"):
        world.providers[name].enabled = False
    # sell 0.0200 EUR. 0.2000 SEK looks ten times the sell rate, but is 0.01742 EUR.
    sek = world.provider("carrier_sek", rates={"33": "0.2000"}, currency="SEK")
    factories.exchange_rate("SEK", "EUR", "0.0871", YESTERDAY)
    assert gateways(route(pg, "33123456789")) == ["carrier_sek_gw1"]
    # and 0.0150 USD looks cheaper than the sell rate but is 0.0225 EUR at 1.5
    sek.enabled = False
    world.provider("carrier_usd", rates={"33": "0.0150"}, currency="USD")
    factories.exchange_rate("USD", "EUR", "1.5", YESTERDAY)
    db_session.flush()
    assert rejected(route(pg, "33123456789")) == "negative_margin"


def test_margin_check_uses_the_converted_rate_rounded_to_6_places(world, pg, db_session):
    for name in ("carrier_a", "carrier_b"):
        world.providers[name].enabled = False
    usd = world.provider("carrier_usd", rates={"33": "0.0100"}, currency="USD")
    fx = factories.exchange_rate("USD", "EUR", "2.00004", YESTERDAY)
    # 0.0100 x 2.00004 = 0.0200004 -> 0.020000 EUR: equal to the sell rate, kept
    rows = route(pg, "33123456789", preview=True, extra=True)
    assert [r["converted_cost_rate"] for r in rows] == [Decimal("0.020000")]
    fx.rate = Decimal("2.00005")   # 0.0200005 -> 0.020001 (half-up): above 0.0200, refused
    db_session.flush()
    assert rejected(route(pg, "33123456789")) == "negative_margin"
    world.customer.allow_negative_margin = True
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == [f"{usd.name}_gw1"]


def test_preview_shows_currency_rate_and_converted_cost(world, pg):
    world.provider("carrier_sek", rates={"33": "0.0600"}, currency="SEK")
    factories.exchange_rate("SEK", "EUR", "0.0871", YESTERDAY)
    rows = {r["gateway"]: r for r in route(pg, "33123456789", preview=True, extra=True)}
    assert (rows["carrier_sek_gw1"]["cost_currency"], rows["carrier_sek_gw1"]["exchange_rate"],
            rows["carrier_sek_gw1"]["cost_rate"], rows["carrier_sek_gw1"]["converted_cost_rate"]) == \
        ("SEK", Decimal("0.0871"), Decimal("0.0600"), Decimal("0.005226"))
    assert (rows["carrier_a_gw1"]["cost_currency"], rows["carrier_a_gw1"]["exchange_rate"],
            rows["carrier_a_gw1"]["converted_cost_rate"]) == ("EUR", None, Decimal("0.0100"))
    # route_call answers the same routes in the same order, with CONTRACT 1's columns
    assert [r["gateway"] for r in route(pg, "33123456789")] == list(rows)


def test_customer_in_another_currency(world, pg):
    """A SEK customer: every EUR carrier is converted EUR -> SEK."""
    card = factories.ratecard(currency="SEK")
    factories.sell_rate(card, "33", "0.2000", "60/60")
    cust = factories.customer(balance="100", ratecards=[card], currency="SEK")
    factories.endpoint(cust, world.perms["std"], ip="192.0.2.77/32")
    assert rejected(route(pg, "33123456789", ip="192.0.2.77")) == "no_route"
    factories.exchange_rate("EUR", "SEK", "11.5", YESTERDAY)
    rows = route(pg, "33123456789", ip="192.0.2.77", preview=True, extra=True)
    assert [(r["gateway"], r["converted_cost_rate"]) for r in rows] == \
        [("carrier_b_gw1", Decimal("0.092000")), ("carrier_a_gw1", Decimal("0.115000"))]


def test_route_currencies_follow_the_providers(world, pg, db_session):
    def currencies():
        with pg.cursor() as cur:
            cur.execute("SELECT route_currencies FROM billing_private.prefix_lengths")
            return cur.fetchone()[0]

    assert currencies() == ["EUR"]
    sek = world.provider("carrier_sek", rates={"33": "0.0010"}, currency="SEK")
    assert currencies() == ["EUR", "SEK"]
    sek.enabled = False
    db_session.flush()
    assert currencies() == ["EUR"]
    world.providers["carrier_a"].currency = "USD"   # a provider's currency changes
    db_session.flush()
    assert currencies() == ["EUR", "USD"]
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1"]   # carrier_a: no USD -> EUR rate


def test_currency_slots_index_routable_providers_by_id(world, pg, db_session):
    # route_call finds a provider's factor as factor[slot[provider id]]: the slot is the
    # position of its currency in route_currencies, NULL for ids that do not route
    def slots():
        with pg.cursor() as cur:
            cur.execute("SELECT route_currencies, route_currency_slots FROM billing_private.prefix_lengths")
            currencies, slots = cur.fetchone()
            cur.execute("SELECT array_lower(route_currency_slots, 1) FROM billing_private.prefix_lengths")
            low = cur.fetchone()[0]
            return currencies, {low + i: s for i, s in enumerate(slots) if s is not None}

    a, b = world.providers["carrier_a"], world.providers["carrier_b"]
    usd = world.provider("carrier_usd", rates={"33": "0.0090"}, currency="USD")
    assert slots() == (["EUR", "USD"], {a.id: 1, b.id: 1, usd.id: 2})
    a.enabled = False
    db_session.flush()
    assert slots() == (["EUR", "USD"], {b.id: 1, usd.id: 2})
    b.currency = "AUD"
    db_session.flush()
    assert slots() == (["AUD", "USD"], {b.id: 1, usd.id: 2})
