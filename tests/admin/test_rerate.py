"""Re-rating from the back office: a preview of the money it moves per customer (nothing
booked), then applying it books exactly that; filters by customer and provider; the
background job reports its progress through its own connection."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import psycopg2
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import LedgerEntry, RerateJob
from portal.rerate import services
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes
from tests.billing.conftest import T0, World, build_world_sql, cdr_row, ids_row, insert_cdr, ledger_sum, scalar

DAY = T0.date()


@pytest.fixture()
def priced(db_session, pg):
    """acme (EUR) on 33 @0.0200 60/60; carrier_a 0.0050 and carrier_b 0.0070 per minute (1/1);
    beta on the same card; three calls of acme (two through a, one through b), one of beta."""
    w = factories.weight()
    perm = factories.permission([w])
    card = factories.ratecard("retail")
    sell = factories.sell_rate(card, "33", "0.0200", "60/60")
    acme = factories.customer("acme", balance="10", ratecards=[card])
    beta = factories.customer("beta", balance="10", ratecards=[card])
    ep_a, ep_b = factories.endpoint(acme, perm), factories.endpoint(beta, perm, ip="198.51.100.8/32")
    carrier_a, carrier_b = factories.provider("carrier_a"), factories.provider("carrier_b")
    gw_a, gw_b = factories.gateway(carrier_a, "gw_a"), factories.gateway(carrier_b, "gw_b")
    cost_a = factories.provider_rate(carrier_a, "33", "0.0050")
    factories.provider_rate(carrier_b, "33", "0.0070")
    for world, start in [(World(acme, ep_a, card, carrier_a, gw_a), T0), (World(acme, ep_a, card, carrier_a, gw_a), T0 + timedelta(hours=1)),
                         (World(acme, ep_a, card, carrier_b, gw_b), T0 + timedelta(hours=2)),
                         (World(beta, ep_b, card, carrier_a, gw_a), T0 + timedelta(hours=3))]:
        insert_cdr(pg, cdr_row(world, billsec=60, start=start))
    db.session.commit()
    return dict(card=card, sell=sell, acme=acme, beta=beta, carrier_a=carrier_a, carrier_b=carrier_b, cost_a=cost_a)


def correct_rates(pg, priced, sell="0.0300", cost="0.0040"):
    """The kind of correction a re-rate follows: the rates of the period were wrong."""
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = %s WHERE id = %s", (Decimal(sell), priced["sell"].id))
        cur.execute("UPDATE billing.provider_rates SET rate = %s WHERE id = %s", (Decimal(cost), priced["cost_a"].id))
    db.session.commit()


def start(client, **filters):
    return client.post("/admin/rerate", data={"date_from": str(DAY), "date_to": str(DAY), **filters})


def test_preview_shows_the_money_it_moves_and_books_nothing(admin_client, pg, priced):
    correct_rates(pg, priced)
    ledger_before = ledger_sum(pg, priced["acme"].id)
    response = start(admin_client)
    assert response.status_code == 302
    job = db.session.scalar(select(RerateJob))
    assert job.status == "previewed" and job.calls == 4
    rows = {r["customer"]: r for r in services.preview_rows(job.preview)}
    acme = rows["acme"]
    assert (acme["calls"], acme["changed"]) == (3, 3)
    assert (acme["sell_before"], acme["sell_after"], acme["sell_diff"]) == \
        (Decimal("0.060000"), Decimal("0.090000"), Decimal("0.030000"))
    # cost: two calls via carrier_a 0.005 -> 0.004, one via carrier_b unchanged at 0.007
    assert (acme["cost_before"], acme["cost_after"], acme["cost_diff"]) == \
        (Decimal("0.017000"), Decimal("0.015000"), Decimal("-0.002000"))
    assert rows["beta"]["sell_diff"] == Decimal("0.010000")
    assert ledger_sum(pg, priced["acme"].id) == ledger_before      # nothing booked
    assert scalar(pg, "SELECT count(*) FROM billing.cdr WHERE sell_amount = 0.03") == 0
    text = re.sub(r"<[^>]+>", "", admin_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "What it would move" in text and "Apply the re-rate" in text
    assert re.search(r"acme\s*3\s*3\s*0.06 EUR\s*0.09 EUR\s*0.03 EUR\s*0.017 EUR\s*0.015 EUR\s*-0.002 EUR", text), text
    assert re.search(r"Total EUR\s*4\s*4\s*0.04 EUR", text)


def test_apply_books_what_the_preview_showed(admin_client, pg, priced):
    correct_rates(pg, priced)
    start(admin_client)
    job = db.session.scalar(select(RerateJob))
    response = admin_client.post(f"/admin/rerate/{job.id}/apply")
    assert response.status_code == 302
    db.session.expire_all()
    job = db.session.get(RerateJob, job.id)
    assert job.status == "done" and job.result["rerated"] == 4 and job.result["adjusted"] == 2
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "rerate").order_by(LedgerEntry.customer_id)).all()
    assert [(e.customer_id, e.amount) for e in entries] == [(priced["acme"].id, Decimal("-0.03")),
                                                            (priced["beta"].id, Decimal("-0.01"))]
    text = re.sub(r"<[^>]+>", "", admin_client.get(f"/admin/rerate/{job.id}").get_data(as_text=True))
    assert "Re-rated 4 call(s)" in text and re.search(r"acme\s*3\s*-0.03 EUR", text)
    assert [r.action for r in audit_rows("rerate")] == ["preview", "apply"]
    # applying twice is refused: preview again first
    response = admin_client.post(f"/admin/rerate/{job.id}/apply", follow_redirects=True)
    assert any("Only a previewed re-rate" in m for m in flashes(response.get_data(as_text=True)))


def test_filters_by_customer_and_by_provider(admin_client, pg, priced):
    correct_rates(pg, priced)
    start(admin_client, provider_id=str(priced["carrier_b"].id))
    job = db.session.scalars(select(RerateJob).order_by(RerateJob.id.desc())).first()
    assert job.calls == 1 and [(r["customer"], r["calls"]) for r in job.preview] == [("acme", 1)]
    start(admin_client, customer_id=str(priced["beta"].id))
    job = db.session.scalars(select(RerateJob).order_by(RerateJob.id.desc())).first()
    assert job.calls == 1 and [(r["customer"], r["changed"]) for r in job.preview] == [("beta", 1)]
    admin_client.post(f"/admin/rerate/{job.id}/apply")
    assert ledger_sum(pg, priced["acme"].id) == Decimal("10") - Decimal("0.06")   # acme untouched
    assert ledger_sum(pg, priced["beta"].id) == Decimal("10") - Decimal("0.03")


def test_nothing_to_change_offers_nothing_to_apply(admin_client, priced):
    response = start(admin_client)
    html = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No call would change" in html and "Apply the re-rate" not in html


def test_form_errors_beside_the_fields(admin_client, priced):
    response = admin_client.post("/admin/rerate", data={"date_from": str(DAY), "date_to": str(DAY - timedelta(days=1))})
    assert response.status_code == 400 and "before the start" in field_error(response.get_data(as_text=True), "date_to")
    response = admin_client.post("/admin/rerate", data={"date_from": "2025-01-01", "date_to": "2026-06-01"})
    assert "At most 366 days" in field_error(response.get_data(as_text=True), "date_to")
    assert db.session.scalar(select(RerateJob)) is None


def test_status_json_for_the_progress_bar(admin_client, priced):
    start(admin_client)
    job = db.session.scalar(select(RerateJob))
    data = admin_client.get(f"/admin/rerate/{job.id}/status").get_json()
    assert data == {"status": "previewed", "phase": "previewed", "processed_lines": 2, "total_lines": 2,
                    "percent": 100, "done": True}


def test_background_jobs_report_progress_and_commit(fresh_db):
    """The portal's path: a thread with its own connection and a status connection."""
    conn = psycopg2.connect(fresh_db)
    ids = build_world_sql(conn)
    for i in range(3):
        insert_cdr(conn, ids_row(ids, billsec=60, start=T0 + timedelta(minutes=i)))
    with conn.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = 0.0300 WHERE prefix = '33'")
    job_id = services.create(conn, DAY, DAY, None, None, "test")
    conn.commit()
    services.start_background(fresh_db, job_id, "preview").join(60)
    with conn.cursor() as cur:
        cur.execute("SELECT status, step, steps, calls, preview FROM billing.rerate_jobs WHERE id = %s", (job_id,))
        status, step, steps, calls, preview = cur.fetchone()
    conn.commit()
    assert (status, step, steps, calls) == ("previewed", 2, 2, 3)
    assert preview[0]["sell_after"] == "0.090000" and preview[0]["changed"] == 3
    assert scalar(conn, "SELECT count(*) FROM billing.ledger WHERE kind = 'rerate'") == 0
    conn.commit()
    services.start_background(fresh_db, job_id, "apply").join(60)
    assert scalar(conn, "SELECT status FROM billing.rerate_jobs WHERE id = %s", job_id) == "done"
    assert scalar(conn, "SELECT amount FROM billing.ledger WHERE kind = 'rerate'") == Decimal("-0.03")
    conn.close()


def test_a_failed_job_says_why_and_books_nothing(fresh_db):
    conn = psycopg2.connect(fresh_db)
    build_world_sql(conn)
    job_id = services.create(conn, DAY, DAY, None, None, "test")
    conn.commit()
    services.start_background(fresh_db, job_id, "apply").join(60)   # not previewed: refused
    assert scalar(conn, "SELECT status FROM billing.rerate_jobs WHERE id = %s", job_id) == "failed"
    assert "preview the re-rate first" in scalar(conn, "SELECT error FROM billing.rerate_jobs WHERE id = %s", job_id)
    conn.close()


def test_cli_rerate_by_provider(cli, pg, priced):
    correct_rates(pg, priced)
    result = cli.invoke(args=["billing", "rerate", "--from", str(DAY), "--to", str(DAY), "--provider", "carrier_b"])
    assert result.exit_code == 0, result.output
    assert "1 call(s) rated" in result.output
    result = cli.invoke(args=["billing", "rerate", "--from", str(DAY), "--to", str(DAY), "--provider", "nobody"])
    assert result.exit_code != 0 and "no provider named 'nobody'" in result.output
