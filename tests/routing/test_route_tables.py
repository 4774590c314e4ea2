"""The tables route_call keeps for speed (docs/performance-route.md) stay exact: the
longest prefix in use (0014) and the routable gateways (0015) follow every write, and
the top-10 cut keeps the first ten allowed routes."""
from __future__ import annotations

from decimal import Decimal

from tests import factories
from tests.routing.conftest import gateway_stats, gateways, route


def use_strategy(world, db_session, strategy):
    world.customer.lcr_strategy = strategy
    db_session.flush()


def test_a_longer_prefix_added_later_is_matched(world, pg):
    rows = route(pg, "33612345678")
    assert rows[0]["sell_prefix"] == "336"
    factories.destination("336123456", world.weights["mobile"], "long")
    factories.sell_rate(world.card, "336123456", "0.0700", "1/1")
    factories.provider_rate(world.providers["carrier_b"], "3361234567", "0.0010")
    rows = route(pg, "33612345678")
    assert rows[0]["sell_prefix"] == "336123456"
    assert [(r["gateway"], r["cost_rate"]) for r in rows] == [("carrier_b_gw1", Decimal("0.0010")),
                                                          ("carrier_a_gw1", Decimal("0.0500"))]


def test_a_prefix_made_longer_by_update_is_matched(world, pg):
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET prefix = '33123456' WHERE ratecard_id = %s AND prefix = '33'",
                    (world.card.id,))
    assert route(pg, "33123456789")[0]["sell_prefix"] == "33123456"
    assert route(pg, "33223456789", preview=True)[0]["reason"] == "no_rate"


def test_gateway_changes_are_seen_at_once(world, pg):
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.gateways SET enabled = false WHERE name = 'carrier_b_gw1'")
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1"]
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.gateways SET enabled = true, add_prefix = '00' WHERE name = 'carrier_b_gw1'")
        cur.execute("DELETE FROM billing.gateways WHERE name = 'carrier_a_gw1'")
    rows = route(pg, "33123456789")
    assert [r["dial_string"] for r in rows] == ["sofia/gateway/carrier_b_gw1/0033123456789"]


def test_statistics_refresh_reorders_at_once(world, pg, db_session):
    use_strategy(world, db_session, "reliability")
    gateway_stats(pg, world.gateways["carrier_a_gw1"], asr="0.6", acd="30")
    gateway_stats(pg, world.gateways["carrier_b_gw1"], asr="0.4", acd="180")
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1", "carrier_b_gw1"]
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.gateway_stats SET asr = 0.9 WHERE gateway_id = %s",
                    (world.gateways["carrier_b_gw1"].id,))
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_ten_allowed_routes_even_when_refused_ones_rank_first(world, pg, db_session):
    # priority strategy: three negative-margin providers of priority 0 would come first
    use_strategy(world, db_session, "priority")
    for i in range(3):
        world.provider(f"dear{i}", priority=0, rates={"33": "0.0500"})      # sell rate of 33 is 0.0200
    for i in range(11):
        world.provider(f"cheap{i:02d}", priority=5, rates={"33": "0.0010"})
    names = gateways(route(pg, "33123456789"))
    assert names == ["carrier_a_gw1", "carrier_b_gw1"] + [f"cheap{i:02d}_gw1" for i in range(8)]
