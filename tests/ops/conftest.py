"""Fixtures of the operations pages: CDR rows written straight into billing.cdr
(the table the billing trigger fills), a small routing world, deck files."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests import factories

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def insert_cdr(pg, **kw) -> int:
    """One rated CDR row; returns its id. Amounts are Decimal strings."""
    row = {
        "fs_cdr_id": kw.pop("fs_cdr_id", 0), "uuid": kw.pop("uuid", None), "customer_id": None, "endpoint_id": None,
        "provider_id": None, "gateway": None, "caller_id": "100", "destination": "33123456789", "sell_prefix": "33",
        "start_stamp": T0, "billsec": 60, "duration": 65, "sell_amount": Decimal("0.02"), "cost_amount": Decimal("0.005"),
        "hangup_cause": "NORMAL_CLEARING", "status": "rated", "unrated_reason": None,
    }
    row.update(kw)
    if row["uuid"] is None:
        import uuid
        row["uuid"] = str(uuid.uuid4())
    row["answer_stamp"] = row["start_stamp"] + timedelta(seconds=5) if row["billsec"] else None
    row["end_stamp"] = row["start_stamp"] + timedelta(seconds=row["duration"])
    row["margin"] = Decimal(row["sell_amount"]) - Decimal(row["cost_amount"])
    row["billed_seconds"] = row["billsec"]
    cols = ", ".join(row)
    with pg.cursor() as cur:
        cur.execute(f"INSERT INTO billing.cdr ({cols}) VALUES ({', '.join('%(' + c + ')s' for c in row)}) RETURNING id", row)
        return cur.fetchone()[0]


@pytest.fixture()
def world(db_session):
    """Two customers with endpoints, two providers with gateways, destinations."""
    w_int = factories.weight("international")
    w_mob = factories.weight("mobile")
    perm = factories.permission([w_int, w_mob], name="standard")
    factories.destination("33", w_int, name="France")
    factories.destination("336", w_mob, name="France Mobile")
    factories.destination("44", w_int, name="United Kingdom")
    card = factories.ratecard("retail")
    factories.sell_rate(card, "33", "0.0200")
    factories.sell_rate(card, "336", "0.0800", increment="30/6")
    acme = factories.customer("acme", balance="50", ratecards=[card])
    beta = factories.customer("beta", balance="5", ratecards=[card], low_balance_alert=Decimal("10"))
    ep_acme = factories.endpoint(acme, perm, name="acme-pbx", ip="198.51.100.7/32")
    ep_beta = factories.endpoint(beta, perm, auth="sip", name="beta-100", username="beta100")
    carrier_a = factories.provider("carrier_a")
    carrier_b = factories.provider("carrier_b")
    gw_a = factories.gateway(carrier_a, name="gw_a1")
    gw_b = factories.gateway(carrier_b, name="gw_b1", host="192.0.2.20")
    factories.provider_rate(carrier_a, "33", "0.0050")
    factories.provider_rate(carrier_b, "33", "0.0070")
    return dict(card=card, acme=acme, beta=beta, ep_acme=ep_acme, ep_beta=ep_beta, perm=perm,
                carrier_a=carrier_a, carrier_b=carrier_b, gw_a=gw_a, gw_b=gw_b, w_int=w_int, w_mob=w_mob)
