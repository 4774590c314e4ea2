"""Which routes, in which order: strategies and their ties, gateways, routing rules,
rate selection, validity windows, blocked rates, digit manipulation."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests import factories
from tests.routing.conftest import gateway_stats, gateways, rejected, route


def use_strategy(world, db_session, strategy):
    world.customer.lcr_strategy = strategy
    db_session.flush()


def test_cost_cheapest_first(world, pg):
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]   # 0.008, 0.010
    assert gateways(route(pg, "33612345678")) == ["carrier_a_gw1", "carrier_b_gw1"]   # 0.05, 0.06


def test_cost_tie_broken_by_provider_priority(world, pg, db_session):
    # 44: both carriers at 0.015; carrier_a has priority 1
    assert gateways(route(pg, "44201234567")) == ["carrier_a_gw1", "carrier_b_gw1"]
    world.providers["carrier_a"].priority = 3
    db_session.flush()
    assert gateways(route(pg, "44201234567")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_priority_strategy(world, pg, db_session):
    use_strategy(world, db_session, "priority")
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1", "carrier_b_gw1"]   # despite cost
    world.providers["carrier_b"].priority = 0
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_priority_tie_broken_by_cost(world, pg, db_session):
    use_strategy(world, db_session, "priority")
    world.providers["carrier_b"].priority = 1
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]   # 0.008 < 0.010


def test_quality_orders_by_acd(world, pg, db_session):
    use_strategy(world, db_session, "quality")
    gateway_stats(pg, world.gateways["carrier_a_gw1"], asr="0.2", acd="30")
    gateway_stats(pg, world.gateways["carrier_b_gw1"], asr="0.9", acd="180")
    assert gateways(route(pg, "33612345678")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_reliability_orders_by_asr(world, pg, db_session):
    use_strategy(world, db_session, "reliability")
    gateway_stats(pg, world.gateways["carrier_a_gw1"], asr="0.6", acd="30")
    gateway_stats(pg, world.gateways["carrier_b_gw1"], asr="0.4", acd="180")
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1", "carrier_b_gw1"]


@pytest.mark.parametrize("strategy", ["quality", "reliability"])
def test_without_traffic_gateways_tie_and_provider_priority_decides(world, pg, db_session, strategy):
    use_strategy(world, db_session, strategy)
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1", "carrier_b_gw1"]
    world.providers["carrier_a"].priority = 5
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]


@pytest.mark.parametrize("strategy", ["quality", "reliability"])
def test_gateways_with_statistics_before_those_without(world, pg, db_session, strategy):
    use_strategy(world, db_session, strategy)
    gateway_stats(pg, world.gateways["carrier_b_gw1"], asr="0.1", acd="5")
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]


def test_equal_share_is_random_per_provider(world, pg, db_session):
    use_strategy(world, db_session, "equal")
    world.provider("carrier_c", priority=1, rates={"33": "0.0010"}, gateways=2)
    firsts = Counter()
    for _ in range(300):
        order = gateways(route(pg, "33123456789", preview=True))
        firsts[order[0].rsplit("_gw", 1)[0]] += 1
        # a provider's gateways stay together, in gateway priority order
        c = [g for g in order if g.startswith("carrier_c")]
        assert c == ["carrier_c_gw1", "carrier_c_gw2"]
        assert order.index("carrier_c_gw2") == order.index("carrier_c_gw1") + 1
    # three providers, 300 draws: each comes first about 100 times (5 sigma ~ 40)
    assert set(firsts) == {"carrier_a", "carrier_b", "carrier_c"}
    assert all(60 <= n <= 140 for n in firsts.values()), firsts


def test_gateways_expand_by_gateway_priority(world, pg, db_session):
    p = world.provider("carrier_c", priority=1, rates={"33": "0.0010"}, gateways=3)
    world.gateways["carrier_c_gw1"].priority = 3
    world.gateways["carrier_c_gw3"].priority = 1
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == [
        "carrier_c_gw3", "carrier_c_gw2", "carrier_c_gw1", "carrier_b_gw1", "carrier_a_gw1"]
    assert p.id == route(pg, "33123456789")[0]["provider_id"]


def test_disabled_gateway_and_provider_are_skipped(world, pg, db_session):
    world.provider("carrier_c", priority=1, rates={"33": "0.0010"}, gateways=2)
    world.gateways["carrier_c_gw1"].enabled = False
    world.providers["carrier_b"].enabled = False
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_c_gw2", "carrier_a_gw1"]


def test_at_most_ten_routes(world, pg):
    for i in range(6):
        world.provider(f"bulk{i}", rates={"33": f"0.00{i}1"}, gateways=2)
    rows = route(pg, "33123456789")
    assert len(rows) == 10
    assert [r["cost_rate"] for r in rows] == sorted(r["cost_rate"] for r in rows)


def _rule(pg, customer, prefix, providers):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.routing_rules (customer_id, prefix) VALUES (%s, %s) RETURNING id",
                    (customer.id, prefix))
        rule_id = cur.fetchone()[0]
        for p in providers:
            cur.execute("INSERT INTO billing.routing_rule_providers (routing_rule_id, provider_id) VALUES (%s, %s)",
                        (rule_id, p.id))


def test_routing_rules_restrict_providers_longest_rule_wins(world, pg):
    a, b = world.providers["carrier_a"], world.providers["carrier_b"]
    _rule(pg, world.customer, "33", [b])
    _rule(pg, world.customer, "336", [a])
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1"]
    assert gateways(route(pg, "33612345678")) == ["carrier_a_gw1"]
    assert gateways(route(pg, "44201234567")) == ["carrier_a_gw1", "carrier_b_gw1"]   # no rule for 44


def test_routing_rules_are_per_customer(world, pg):
    other = factories.customer("other", balance="5", ratecards=[world.card])
    factories.endpoint(other, world.perms["std"], ip="192.0.2.50/32", name="other-pbx")
    _rule(pg, other, "33", [world.providers["carrier_a"]])
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1", "carrier_a_gw1"]
    assert gateways(route(pg, "33123456789", ip="192.0.2.50")) == ["carrier_a_gw1"]


def test_a_rule_whose_providers_cannot_carry_the_call_leaves_no_route(world, pg):
    c = world.provider("carrier_c", rates={"44": "0.001"})
    _rule(pg, world.customer, "33", [c])
    assert rejected(route(pg, "33123456789")) == "no_route"


def test_ratecard_priority_beats_a_longer_prefix(world, pg):
    second = factories.ratecard("second")
    factories.sell_rate(second, "3361", "0.0700")
    other = factories.customer("two_cards", balance="5", ratecards=[world.card, second])
    factories.endpoint(other, world.perms["std"], ip="192.0.2.60/32", name="two-pbx")
    row = route(pg, "33612345678", ip="192.0.2.60")[0]
    assert (row["sell_prefix"], row["sell_rate"]) == ("336", Decimal("0.080000"))   # card 1 has a rate
    row = route(pg, "49301", ip="192.0.2.60")[0]
    assert row["reason"] == "unknown_destination"
    factories.destination("49", world.weights["intl"], "Germany")
    factories.sell_rate(second, "49", "0.0400")
    factories.provider_rate(world.providers["carrier_a"], "49", "0.0100")
    row = route(pg, "49301", ip="192.0.2.60")[0]
    assert (row["sell_prefix"], row["sell_rate"]) == ("49", Decimal("0.040000"))   # falls to card 2


def test_longest_sell_prefix_wins_within_a_card(world, pg):
    factories.sell_rate(world.card, "33612", "0.1000")
    assert route(pg, "33612345678")[0]["sell_prefix"] == "33612"
    assert route(pg, "33613345678")[0]["sell_prefix"] == "336"


def test_validity_windows(world, pg):
    now = datetime.now(timezone.utc)
    # a newer 33 rate valid since an hour ago, the old one closed then; a future one not yet
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET valid_to = %s WHERE ratecard_id = %s AND prefix = '33'",
                    (now - timedelta(hours=1), world.card.id))
    factories.sell_rate(world.card, "33", "0.0250", valid_from=now - timedelta(hours=1))
    factories.sell_rate(world.card, "33", "0.0300", valid_from=now + timedelta(days=1))
    assert route(pg, "33123456789")[0]["sell_rate"] == Decimal("0.025000")
    # provider side: carrier_b's 33 rate expired -> only carrier_a's, at its own rate
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.provider_rates SET valid_to = %s WHERE provider_id = %s AND prefix = '33'",
                    (now - timedelta(minutes=1), world.providers["carrier_b"].id))
    assert gateways(route(pg, "33123456789")) == ["carrier_a_gw1"]


def test_overlapping_sell_rates_latest_valid_from_then_highest_id(world, pg):
    """Two valid rates of one prefix in one card (a new price entered before the old one
    was closed): the latest valid_from wins whatever the order they were entered in --
    the rule of find_sell_rate, shared with CDR rating and re-rating (docs/billing.md)."""
    now = datetime.now(timezone.utc)
    factories.sell_rate(world.card, "336", "0.0700", "30/6", valid_from=now - timedelta(hours=1))
    factories.sell_rate(world.card, "336", "0.0900", "30/6", valid_from=now - timedelta(days=2))
    factories.sell_rate(world.card, "336", "0.0950", "30/6", valid_from=now + timedelta(days=1))   # not yet
    row = route(pg, "33612345678")[0]
    assert (row["sell_prefix"], row["sell_rate"]) == ("336", Decimal("0.070000"))


def test_overlapping_provider_rates_latest_valid_from_sets_the_cost(world, pg):
    """The ranking takes a provider's rate by the same rule as find_provider_rate: of two
    valid rates of one prefix, the latest valid_from (the open-ended one is the oldest)."""
    now = datetime.now(timezone.utc)
    carrier_b = world.providers["carrier_b"]
    factories.provider_rate(carrier_b, "336", "0.0550", valid_from=now - timedelta(hours=1))
    factories.provider_rate(carrier_b, "336", "0.0010", valid_from=now - timedelta(days=2))
    factories.provider_rate(carrier_b, "336", "0.0005", valid_from=now + timedelta(days=1))   # not yet
    rows = route(pg, "33612345678")
    assert [(r["gateway"], r["cost_rate"]) for r in rows] == [
        ("carrier_a_gw1", Decimal("0.050000")), ("carrier_b_gw1", Decimal("0.055000"))]


def test_blocked_rate_is_skipped_for_the_next_longest(world, pg):
    """Blocked rows do not match (DESIGN: valid = in window and not blocked), so a
    shorter prefix of the same card applies. To bar a destination use permissions."""
    factories.sell_rate(world.card, "33612", "0.5000", blocked=True)
    assert route(pg, "33612345678")[0]["sell_prefix"] == "336"
    factories.provider_rate(world.providers["carrier_b"], "33612", "0.0010", blocked=True)
    rows = route(pg, "33612345678")
    assert [r["cost_rate"] for r in rows] == [Decimal("0.050000"), Decimal("0.060000")]


def test_longest_provider_prefix_sets_the_cost(world, pg):
    factories.provider_rate(world.providers["carrier_b"], "3361", "0.0010")
    rows = route(pg, "33612345678")
    assert [(r["gateway"], r["cost_rate"]) for r in rows] == [
        ("carrier_b_gw1", Decimal("0.001000")), ("carrier_a_gw1", Decimal("0.050000"))]


def test_endpoint_digit_manipulation(world, pg, db_session):
    # national dialling: 0612345678 -> strip the 0, add 33
    world.ip_endpoint.strip_digits = 1
    world.ip_endpoint.add_prefix = "33"
    db_session.flush()
    row = route(pg, "0612345678")[0]
    assert row["destination"] == "33612345678" and row["sell_prefix"] == "336"
    assert row["dial_string"].endswith("/33612345678")


def test_leading_plus_is_dropped_before_the_endpoint_rules(world, pg, db_session):
    assert route(pg, "+33612345678")[0]["destination"] == "33612345678"
    world.ip_endpoint.strip_digits = 2
    db_session.flush()
    assert route(pg, "+0033612345678")[0]["destination"] == "33612345678"


def test_gateway_digit_manipulation(world, pg, db_session):
    world.gateways["carrier_a_gw1"].strip_digits = 2
    world.gateways["carrier_a_gw1"].add_prefix = "0"
    world.gateways["carrier_b_gw1"].add_prefix = "00"
    db_session.flush()
    rows = {r["gateway"]: r["dial_string"] for r in route(pg, "33612345678")}
    assert rows == {"carrier_a_gw1": "sofia/gateway/carrier_a_gw1/0612345678",
                    "carrier_b_gw1": "sofia/gateway/carrier_b_gw1/0033612345678"}


def test_a_gateway_stripping_the_whole_number_is_skipped(world, pg, db_session):
    world.gateways["carrier_a_gw1"].strip_digits = 11
    db_session.flush()
    assert gateways(route(pg, "33123456789")) == ["carrier_b_gw1"]
