"""Routing simulator over the real billing.route_preview (CONTRACT 1 columns)."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from portal.simulator import services

def test_unavailable_is_explained(admin_client, pg, world):
    # Without the routing release's function (dropped inside this rolled-back test).
    with pg.cursor() as cur:
        cur.execute("DROP FUNCTION billing.route_preview(text, inet, text, text, text)")
    with pytest.raises(services.SimulatorUnavailable, match="route_preview"):
        services.simulate(pg, "198.51.100.7", None, None, "33123456789")
    page = admin_client.get("/admin/simulator?source_ip=198.51.100.7&destination=33123456789").get_data(as_text=True)
    assert "does not have yet" in page


def test_inputs_are_checked(pg):
    with pytest.raises(services.SimulatorError, match="not an IP"):
        services.simulate(pg, "300.1.1.1", None, None, "33")
    with pytest.raises(services.SimulatorError, match="source IP or a SIP user"):
        services.simulate(pg, "", "", None, "33")
    with pytest.raises(services.SimulatorError, match="SIP user"):
        services.simulate(pg, None, "bad user'", None, "33")


def test_endpoint_source(world):
    assert services.endpoint_source(world["ep_acme"]) == ("198.51.100.7", None)
    assert services.endpoint_source(world["ep_beta"]) == (None, "beta100")


def test_routes_shown_with_margin(admin_client, pg, world):
    sim = services.simulate(pg, "198.51.100.7", None, "100", "33123456789")
    assert sim.ok and sim.customer == "acme" and sim.endpoint == "acme-pbx" and sim.destination_name == "France"
    assert [(r.seq, r.gateway, r.provider) for r in sim.routes] == [(1, "gw_a1", "carrier_a"), (2, "gw_b1", "carrier_b")]
    assert [r.margin for r in sim.routes] == [Decimal("0.015"), Decimal("0.013")]
    assert sim.routes[0].dial_string == "sofia/gateway/gw_a1/33123456789"
    assert sim.max_duration == 14400
    page = admin_client.get(f"/admin/simulator?endpoint_id={world['ep_acme'].id}&destination=33123456789").get_data(as_text=True)
    assert "Call allowed" in page and "sofia/gateway/gw_b1/33123456789" in page and "carrier_a" in page


def test_refusal_shows_reason_and_cause(admin_client, pg, world):
    page = admin_client.get("/admin/simulator?source_ip=203.0.113.9&destination=33123456789").get_data(as_text=True)
    assert "Call refused: unknown_source" in page and "CALL_REJECTED" in page
    assert "No enabled endpoint matches" in page


def test_empty_form_shows_instructions(admin_client, world):
    page = admin_client.get("/admin/simulator").get_data(as_text=True)
    assert "Pick a source and a number" in page and "acme / acme-pbx" in page


def test_a_carrier_in_another_currency_is_ranked_converted(admin_client, pg, world):
    from datetime import datetime, timedelta, timezone
    from tests import factories

    sek = factories.provider("carrier_sek", currency="SEK")
    factories.gateway(sek, name="gw_sek1", host="192.0.2.30")
    factories.provider_rate(sek, "33", "0.0500")          # 0.05 SEK x 0.0871 = 0.004355 EUR: the cheapest
    factories.exchange_rate("SEK", "EUR", "0.0871", datetime.now(timezone.utc) - timedelta(days=1))
    sim = services.simulate(pg, "198.51.100.7", None, "100", "33123456789")
    first = sim.routes[0]
    assert (first.provider, first.cost_rate, first.original_cost_rate, first.cost_currency, first.exchange_rate) == \
        ("carrier_sek", Decimal("0.004355"), Decimal("0.0500"), "SEK", Decimal("0.0871"))
    assert first.margin == Decimal("0.015645")      # sell 0.0200 EUR minus the converted cost
    assert [r.provider for r in sim.routes[1:]] == ["carrier_a", "carrier_b"] and not sim.routes[1].converted
    page = admin_client.get("/admin/simulator?source_ip=198.51.100.7&destination=33123456789").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", page)
    assert "Cost /min (EUR)" in text and "0.004355" in text and "0.0500 SEK × 0.0871" in text


def test_a_carrier_without_exchange_rate_is_explained(admin_client, pg, world, db_session):
    from tests import factories

    sek = factories.provider("carrier_sek", currency="SEK")
    factories.gateway(sek, name="gw_sek1", host="192.0.2.30")
    factories.provider_rate(sek, "33", "0.0010")
    sim = services.simulate(pg, "198.51.100.7", None, "100", "33123456789")
    assert [r.provider for r in sim.routes] == ["carrier_a", "carrier_b"]
    assert sim.fx_refused == [("carrier_sek", "SEK", "not offered: no SEK→EUR exchange rate is valid now "
                                                     "(add one under Exchange rates)")]
    world["carrier_a"].enabled = world["carrier_b"].enabled = False
    db_session.flush()
    sim = services.simulate(pg, "198.51.100.7", None, "100", "33123456789")
    assert sim.reason == "no_route" and "left out for want of an exchange rate" in sim.explanation
    page = admin_client.get("/admin/simulator?source_ip=198.51.100.7&destination=33123456789").get_data(as_text=True)
    assert "Call refused: no_route" in page and "carrier_sek" in page and "add a SEK→EUR rate" in page
    # a routing rule that leaves carrier_sek out anyway: nothing to explain about it
    from portal.models import RoutingRule

    db_session.add(RoutingRule(customer_id=world["acme"].id, prefix="33", providers=[world["carrier_a"]]))
    db_session.flush()
    assert services.simulate(pg, "198.51.100.7", None, "100", "33123456789").fx_refused == []
