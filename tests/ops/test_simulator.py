"""Routing simulator over the real billing.route_preview (CONTRACT 1 columns)."""
from __future__ import annotations

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
