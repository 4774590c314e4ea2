"""Routing simulator over billing.route_preview (CONTRACT 1 columns)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from portal.simulator import services

# Until the routing release (billing.route_preview) is merged, the page is checked
# against a stand-in with the contract's exact signature and columns, created inside
# the test's rolled-back transaction. The real function is tested below once present.
STAND_IN = """
CREATE FUNCTION billing.route_preview(p_call_uuid text, p_source_ip inet, p_sip_user text, p_caller_id text,
                                      p_destination text)
RETURNS TABLE (ok boolean, reason text, hangup_cause text, customer_id bigint, endpoint_id bigint, destination text,
               sell_prefix text, sell_rate numeric, max_duration integer, route_seq integer, gateway text,
               dial_string text, provider_id bigint, cost_rate numeric)
LANGUAGE sql AS $$
    SELECT true, NULL, NULL, e.customer_id, e.id, p_destination, '33', 0.02, 14400, g.seq, g.name,
           'sofia/gateway/' || g.name || '/' || p_destination, g.provider_id, g.cost
      FROM billing.endpoints e,
           (VALUES (1, 'gw_a1', %(a)s::bigint, 0.005), (2, 'gw_b1', %(b)s::bigint, 0.007)) AS g(seq, name, provider_id, cost)
     WHERE e.ip >>= p_source_ip AND p_destination LIKE '33%%'
    UNION ALL
    SELECT false, 'no_rate', 'NO_ROUTE_DESTINATION', e.customer_id, e.id, p_destination, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL
      FROM billing.endpoints e WHERE e.ip >>= p_source_ip AND p_destination NOT LIKE '33%%'
    UNION ALL
    SELECT false, 'unknown_source', 'CALL_REJECTED', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     WHERE NOT EXISTS (SELECT 1 FROM billing.endpoints e WHERE e.ip >>= p_source_ip)
$$;
"""


@pytest.fixture()
def preview_function(pg, world):
    if services.available(pg):
        return "real"
    with pg.cursor() as cur:
        cur.execute(STAND_IN, {"a": world["carrier_a"].id, "b": world["carrier_b"].id})
    return "stand-in"


def test_unavailable_is_explained(admin_client, pg, world):
    if services.available(pg):
        pytest.skip("billing.route_preview is installed")
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


def test_routes_shown_with_margin(admin_client, pg, world, preview_function):
    sim = services.simulate(pg, "198.51.100.7", None, "100", "33123456789")
    assert sim.ok and sim.customer == "acme" and sim.endpoint == "acme-pbx" and sim.destination_name == "France"
    assert [(r.seq, r.gateway, r.provider) for r in sim.routes] == [(1, "gw_a1", "carrier_a"), (2, "gw_b1", "carrier_b")]
    assert [r.margin for r in sim.routes] == [Decimal("0.015"), Decimal("0.013")]
    assert sim.routes[0].dial_string == "sofia/gateway/gw_a1/33123456789"
    assert sim.max_duration == 14400
    page = admin_client.get(f"/admin/simulator?endpoint_id={world['ep_acme'].id}&destination=33123456789").get_data(as_text=True)
    assert "Call allowed" in page and "sofia/gateway/gw_b1/33123456789" in page and "carrier_a" in page


def test_refusal_shows_reason_and_cause(admin_client, pg, world, preview_function):
    page = admin_client.get("/admin/simulator?source_ip=203.0.113.9&destination=33123456789").get_data(as_text=True)
    assert "Call refused: unknown_source" in page and "CALL_REJECTED" in page
    assert "No enabled endpoint matches" in page


def test_empty_form_shows_instructions(admin_client, world):
    page = admin_client.get("/admin/simulator").get_data(as_text=True)
    assert "Pick a source and a number" in page and "acme / acme-pbx" in page
