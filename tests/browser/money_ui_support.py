"""Fixtures of the browser tests of the back office's money and navigation pages: the
portal on a free port over a committed database of its own, with a small operator
(EUR and SEK customers, two weeks of calls with odd amounts, a call in progress), and
Debian's Chromium at 1366x768 (the laptop size the navigation must fit)."""
from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from .ops_support import CHROMIUM, CHROMIUM_ARGS, record_problems

ADMIN = ("money-admin@example.net", "money-admin-password-1")
CUSTOMER = ("ops@acme.example", "acme-customer-password-1")


@dataclass
class World:
    base: str
    app: object
    acme: int
    nordic: int
    acme_pbx: int
    answered_cdr: int       # an answered call of acme (failover route 2)
    daily: dict             # day (date) -> (calls, revenue, cost) of acme+nordic


def _cdr(cur, **kw) -> int:
    row = {"fs_cdr_id": 0, "uuid": str(uuid.uuid4()), "caller_id": "4686001234", "destination": "33123456789",
           "sell_prefix": "33", "billsec": 60, "duration": 65, "sell_amount": Decimal("0.02"),
           "cost_amount": Decimal("0.005"), "hangup_cause": "NORMAL_CLEARING", "status": "rated",
           "billed_seconds": None, "route_seq": 1}
    row.update(kw)
    row["billed_seconds"] = row["billsec"] if row["billed_seconds"] is None else row["billed_seconds"]
    row["answer_stamp"] = row["start_stamp"] + timedelta(seconds=5) if row["billsec"] else None
    row["end_stamp"] = row["start_stamp"] + timedelta(seconds=row["duration"])
    row["margin"] = Decimal(row["sell_amount"]) - Decimal(row["cost_amount"])
    cols = ", ".join(row)
    cur.execute(f"INSERT INTO billing.cdr ({cols}) VALUES ({', '.join('%(' + c + ')s' for c in row)}) RETURNING id", row)
    return cur.fetchone()[0]


def build_world(app) -> dict:
    """Committed data; returns ids. Daily traffic: 40-90 calls costing 1.4-4.4 EUR a day
    (the shape that used to be drawn flat on the calls axis)."""
    from portal.extensions import db
    from portal.models import CallHold
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        w = factories.weight("international")
        perm = factories.permission([w], name="standard")
        factories.destination("33", w, name="France")
        factories.destination("336", w, name="France Mobile")
        factories.destination("46", w, name="Sweden")
        card = factories.ratecard("retail")
        card_sek = factories.ratecard("retail-sek", currency="SEK")
        acme = factories.customer("acme", balance="96.87035", ratecards=[card], email="billing@acme.example",
                                  max_calls=8)
        nordic = factories.customer("nordic", balance="40.4749", ratecards=[card_sek], currency="SEK")
        pbx = factories.endpoint(acme, perm, name="acme-pbx")
        sip = factories.endpoint(acme, perm, auth="sip", username="acme100", name="acme-100")
        factories.endpoint(nordic, perm, ip="203.0.113.10/32", name="nordic-trunk")
        factories.user(*CUSTOMER, customer=acme)
        prov = factories.provider("carrier-a")
        factories.gateway(prov, name="gw_a1")
        prov_b = factories.provider("carrier-b")
        factories.gateway(prov_b, name="gw_b1")
        factories.topup(acme, "-0.07175", kind="adjustment")
        db.session.add(CallHold(call_uuid="live-0001", customer_id=acme.id, endpoint_id=sip.id,
                                amount=Decimal("1.234567"), sell_rate=Decimal("0.0233"), max_duration=3178,
                                destination="33612345678",
                                expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
        db.session.commit()
        ids = {"acme": acme.id, "nordic": nordic.id, "pbx": pbx.id, "sip": sip.id, "prov": prov.id, "prov_b": prov_b.id}

    import psycopg2

    daily = {}
    today = datetime.now(timezone.utc).date()
    with psycopg2.connect(app.config["DATABASE_URL"]) as conn, conn.cursor() as cur:
        for back in range(14):
            day = today - timedelta(days=back)
            calls = 40 + (back * 7) % 51
            revenue = Decimal("1.4") + Decimal(back % 4)   # 1.4 .. 4.4 EUR a day
            per_call = (revenue / calls).quantize(Decimal("0.000001"))
            start = datetime.combine(day, time(8), timezone.utc)
            for i in range(calls):
                _cdr(cur, customer_id=ids["acme"], endpoint_id=ids["pbx"], provider_id=ids["prov"], gateway="gw_a1",
                     start_stamp=start + timedelta(minutes=i), sell_amount=per_call,
                     cost_amount=(per_call / 2).quantize(Decimal("0.000001")), sell_rate=Decimal("0.0233"))
            daily[day] = (calls, per_call * calls, (per_call / 2).quantize(Decimal("0.000001")) * calls)
        ids["answered_cdr"] = _cdr(
            cur, customer_id=ids["acme"], endpoint_id=ids["sip"], provider_id=ids["prov_b"], gateway="gw_b1",
            start_stamp=datetime.combine(today, time(7, 15), timezone.utc), caller_id="+46701234567",
            destination="33612345678", sell_prefix="336", billsec=187, duration=199, billed_seconds=240,
            sell_rate=Decimal("0.0233"), sell_amount=Decimal("0.093200"), cost_rate=Decimal("0.0120"),
            cost_amount=Decimal("0.037400"), route_seq=2)
        calls, revenue, cost = daily[today]
        daily[today] = (calls + 1, revenue + Decimal("0.0932"), cost + Decimal("0.0374"))
    ids["daily"] = daily
    return ids


@pytest.fixture()
def money_world(fresh_db, tmp_path):
    """World(base URL, app, ids) of a portal with CSRF on, served by werkzeug in a thread."""
    from werkzeug.serving import make_server

    from portal import create_app
    from portal.config import TestingConfig
    from portal.extensions import db

    app = create_app(TestingConfig, DATABASE_URL=fresh_db, WTF_CSRF_ENABLED=True)
    app.instance_path = str(tmp_path / "instance")
    ids = build_world(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield World(f"http://127.0.0.1:{server.server_port}", app, ids["acme"], ids["nordic"], ids["pbx"],
                    ids["answered_cdr"], ids["daily"])
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture()
def laptop_page():
    """A Chromium page of 1366x768 that records console errors and failed requests."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(15000)
        page.problems = record_problems(page)
        yield page
        context.close()
        browser.close()


def sign_in(page, base: str, who=ADMIN) -> None:
    page.goto(base + "/login")
    page.fill("#email", who[0])
    page.fill("#password", who[1])
    page.click("#submit")
    page.wait_for_load_state()


def screenshot(page, name: str) -> None:
    """Full-page screenshots for people checking the pages: only when OPS_SCREENSHOTS names a folder."""
    folder = os.environ.get("OPS_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
