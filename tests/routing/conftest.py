"""Fixtures for route_call tests: a small routing world built with tests/factories.py.

The world (inside the test's rolled-back transaction):

* weights intl / mobile / premium; permission ``std`` = {intl, mobile}, ``all`` = all three
* destinations 33 (intl), 336 (mobile), 3389 (premium), 44 (intl)
* ratecard ``card`` for the customer: 33 at 0.0200 (60/60), 336 at 0.0800 (30/6),
  3389 at 1.0000, 44 at 0.0300
* customer ``acme``: prepaid, balance 10.00, strategy cost, ratecards [card]
* endpoints: IP 198.51.100.7/32 (permission std) and SIP user ``acme100`` (permission all)
* providers ``carrier_a`` (priority 1, gateway gw_a1) and ``carrier_b`` (priority 2,
  gateway gw_b1), both with rates for 33, 336 and 44
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from tests import factories

ACME_IP = "198.51.100.7"

COLUMNS = ("ok", "reason", "hangup_cause", "customer_id", "endpoint_id", "destination", "sell_prefix",
           "sell_rate", "max_duration", "route_seq", "gateway", "dial_string", "provider_id", "cost_rate",
           "granted_seconds")          # CONTRACT 1b


# route_preview's columns after CONTRACT 1's (for the simulator, 0110)
PREVIEW_EXTRA = ("cost_currency", "exchange_rate", "converted_cost_rate")


def route(pg, destination, ip=ACME_IP, sip_user=None, uuid="call-1", caller_id="100", preview=False,
          extra=False):
    """The rows of billing.route_call (or route_preview) as dicts: CONTRACT 1's columns,
    and with `extra` route_preview's own columns too."""
    fn = "billing.route_preview" if preview else "billing.route_call"
    columns = COLUMNS + PREVIEW_EXTRA if preview else COLUMNS
    with pg.cursor() as cur:
        cur.execute(f"SELECT * FROM {fn}(%s, %s, %s, %s, %s)", (uuid, ip, sip_user, caller_id, destination))
        assert tuple(d.name for d in cur.description) == columns
        rows = [dict(zip(columns, row)) for row in cur.fetchall()]
    if not extra:
        rows = [{k: row[k] for k in COLUMNS} for row in rows]
    return rows


def rejected(rows):
    """The reason of a refused call, after checking the one-row shape of a refusal."""
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["ok"] is False and row["route_seq"] is None and row["dial_string"] is None
    return row["reason"]


def gateways(rows):
    assert all(r["ok"] for r in rows), rows
    assert [r["route_seq"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["gateway"] for r in rows]


def holds(pg, customer_id=None):
    with pg.cursor() as cur:
        cur.execute("""SELECT call_uuid, customer_id, endpoint_id, amount, sell_rate, max_duration, destination,
                              expires_at - created_at, granted_seconds, grants, expires_at
                         FROM billing.call_holds WHERE %s IS NULL OR customer_id = %s ORDER BY call_uuid""",
                    (customer_id, customer_id))
        names = ("call_uuid", "customer_id", "endpoint_id", "amount", "sell_rate", "max_duration", "destination",
                 "lifetime", "granted_seconds", "grants", "expires_at")
        return [dict(zip(names, r)) for r in cur.fetchall()]


def gateway_stats(pg, gateway, asr=None, acd=None):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.gateway_stats (gateway_id, asr, acd) VALUES (%s, %s, %s)",
                    (gateway.id, asr, acd))


def set_settings(pg, **values):
    with pg.cursor() as cur:
        for key, value in values.items():
            assert key in ("max_call_seconds", "hold_grace_seconds", "quota_seconds", "reauth_margin_seconds",
                           "ring_timeout_seconds")
            cur.execute(f"UPDATE billing.settings SET {key} = %s", (value,))


@dataclass
class World:
    weights: dict
    perms: dict
    card: object
    customer: object
    ip_endpoint: object
    sip_endpoint: object
    providers: dict
    gateways: dict
    extra: dict = field(default_factory=dict)

    def provider(self, name, priority=1, rates=None, gateways=1, **kw):
        """A provider with `gateways` gateways named <name>_gw1.. and {prefix: rate}."""
        p = factories.provider(name, priority=priority, **kw)
        self.providers[name] = p
        for i in range(1, gateways + 1):
            self.gateways[f"{name}_gw{i}"] = factories.gateway(p, f"{name}_gw{i}", priority=i)
        for prefix, rate in (rates or {}).items():
            factories.provider_rate(p, prefix, rate)
        return p


@pytest.fixture()
def world(db_session):
    weights = {n: factories.weight(n) for n in ("intl", "mobile", "premium")}
    perms = {
        "std": factories.permission([weights["intl"], weights["mobile"]], "std"),
        "all": factories.permission(list(weights.values()), "all"),
    }
    factories.destination("33", weights["intl"], "France")
    factories.destination("336", weights["mobile"], "France Mobile")
    factories.destination("3389", weights["premium"], "France Premium")
    factories.destination("44", weights["intl"], "United Kingdom")
    card = factories.ratecard("card")
    factories.sell_rate(card, "33", "0.0200", "60/60")
    factories.sell_rate(card, "336", "0.0800", "30/6")
    factories.sell_rate(card, "3389", "1.0000", "60/60")
    factories.sell_rate(card, "44", "0.0300", "60/60")
    acme = factories.customer("acme", balance="10.00", ratecards=[card])
    ip_ep = factories.endpoint(acme, perms["std"], ip=f"{ACME_IP}/32", name="acme-pbx")
    sip_ep = factories.endpoint(acme, perms["all"], auth="sip", username="acme100", name="acme-100")
    w = World(weights, perms, card, acme, ip_ep, sip_ep, {}, {})
    w.provider("carrier_a", priority=1, rates={"33": "0.0100", "336": "0.0500", "44": "0.0150"})
    w.provider("carrier_b", priority=2, rates={"33": "0.0080", "336": "0.0600", "44": "0.0150"})
    return w


def dec(value: str) -> Decimal:
    return Decimal(value)
