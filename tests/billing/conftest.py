"""Fixtures for CDR billing tests: a small priced world and a raw-CDR inserter."""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests import factories

T0 = datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone.utc)

FS_CDR_COLUMNS = (
    "uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
    "duration", "billsec", "hangup_cause", "sip_hangup_disposition", "billing_customer_id",
    "billing_endpoint_id", "billing_destination", "billing_sell_prefix", "billing_sell_rate",
    "billing_route_seq", "billing_gateway", "billing_provider_id", "billing_cost_rate",
    "billing_reject_reason",
)


@dataclass
class World:
    customer: object
    endpoint: object
    ratecard: object
    provider: object
    gateway: object


@pytest.fixture()
def world(db_session):
    """Customer 'acme' (prepaid, 10.00) on ratecard 33 @0.0200 60/60, 336 @0.0800 30/6;
    carrier with gateway, cost 33 @0.0050 1/1, 336 @0.0300 1/1."""
    w = factories.weight()
    perm = factories.permission([w])
    factories.destination("33", w)
    card = factories.ratecard()
    factories.sell_rate(card, "33", "0.0200", "60/60")
    factories.sell_rate(card, "336", "0.0800", "30/6")
    cust = factories.customer(balance="10.00", ratecards=[card])
    ep = factories.endpoint(cust, perm)
    prov = factories.provider()
    gw = factories.gateway(prov)
    factories.provider_rate(prov, "33", "0.0050", "1/1")
    factories.provider_rate(prov, "336", "0.0300", "1/1")
    return World(cust, ep, card, prov, gw)


def cdr_row(world: World | None = None, billsec: int = 61, destination: str = "33123456789",
            start: datetime = T0, **overrides) -> dict:
    """A raw CDR as route.lua + mod_cdr_pg_csv would produce for an answered call."""
    ring = 5
    talk = max(billsec or 0, 0)
    row = {
        "uuid": str(uuidlib.uuid4()),
        "caller_id_number": "1000",
        "destination_number": destination,
        "start_stamp": start,
        "answer_stamp": start + timedelta(seconds=ring) if talk and start else None,
        "end_stamp": start + timedelta(seconds=ring + talk) if start else None,
        "duration": ring + talk,
        "billsec": billsec,
        "hangup_cause": "NORMAL_CLEARING" if billsec else "NO_ANSWER",
        "billing_destination": destination,
        "billing_route_seq": 1,
    }
    if world is not None:
        row.update(billing_customer_id=world.customer.id, billing_endpoint_id=world.endpoint.id,
                   billing_gateway=world.gateway.name, billing_provider_id=world.provider.id)
    row.update(overrides)
    return row


def insert_cdr(conn, row: dict) -> int:
    """INSERT one raw CDR; returns the number of rows stored (0 = ignored duplicate)."""
    cols = list(row)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO billing.fs_cdr ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
            [row[c] for c in cols])
        return cur.rowcount


def one(conn, sql: str, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def scalar(conn, sql: str, *args):
    row = one(conn, sql, *args)
    return None if row is None else row[0]


def rated(conn, uuid: str) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM billing.cdr WHERE uuid = %s", (uuid,))
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    assert len(rows) == 1, f"{len(rows)} cdr rows for {uuid}"
    return dict(zip(names, rows[0]))


def balance(conn, customer_id: int) -> Decimal:
    return scalar(conn, "SELECT balance FROM billing.customers WHERE id = %s", customer_id)


def ledger_sum(conn, customer_id: int) -> Decimal:
    return scalar(conn, "SELECT coalesce(sum(amount), 0) FROM billing.ledger WHERE customer_id = %s", customer_id)


@dataclass
class Ids:
    customer_id: int
    endpoint_id: int
    provider_id: int
    gateway: str
    ratecard_id: int


def build_world_sql(conn, balance_: str = "10.00", billing_type: str = "prepaid", credit_limit: str = "0",
                    name: str = "acme") -> Ids:
    """The `world` fixture's data in plain SQL, committed, for multi-connection tests."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO billing.weights (name) VALUES ('intl') RETURNING id")
        weight_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.permissions (name) VALUES ('std') RETURNING id")
        perm_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.permission_weights VALUES (%s, %s)", (perm_id, weight_id))
        cur.execute("INSERT INTO billing.destinations (prefix, name, weight_id) VALUES ('33', 'France', %s)", (weight_id,))
        cur.execute("INSERT INTO billing.ratecards (name) VALUES ('retail') RETURNING id")
        card_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.rates (ratecard_id, prefix, rate, increment_first, increment_next) "
                    "VALUES (%s, '33', 0.0200, 60, 60), (%s, '336', 0.0800, 30, 6)", (card_id, card_id))
        cur.execute("INSERT INTO billing.customers (name, billing_type, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                    (name, billing_type, Decimal(credit_limit)))
        cust_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.customer_ratecards VALUES (%s, %s, 1)", (cust_id, card_id))
        if Decimal(balance_):
            cur.execute("INSERT INTO billing.ledger (customer_id, kind, amount) VALUES (%s, 'initial', %s)",
                        (cust_id, Decimal(balance_)))
        cur.execute("INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id) "
                    "VALUES (%s, 'acme-pbx', 'ip', '198.51.100.7/32', %s) RETURNING id", (cust_id, perm_id))
        ep_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.providers (name) VALUES ('carrier_a') RETURNING id")
        prov_id = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.gateways (provider_id, name, host) VALUES (%s, 'gw_a1', '192.0.2.10')", (prov_id,))
        cur.execute("INSERT INTO billing.provider_rates (provider_id, prefix, rate, increment_first, increment_next) "
                    "VALUES (%s, '33', 0.0050, 1, 1), (%s, '336', 0.0300, 1, 1)", (prov_id, prov_id))
    conn.commit()
    return Ids(cust_id, ep_id, prov_id, "gw_a1", card_id)


def ids_row(ids: Ids, **kw) -> dict:
    row = cdr_row(None, **kw)
    row.setdefault("billing_customer_id", ids.customer_id)
    row.setdefault("billing_endpoint_id", ids.endpoint_id)
    row.setdefault("billing_gateway", ids.gateway)
    row.setdefault("billing_provider_id", ids.provider_id)
    return row
