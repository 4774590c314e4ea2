"""CDR browser: filters, keyset pagination, totals, streaming CSV export, re-rate guard."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.cdrs import services
from portal.cdrs.services import CdrFilter

from .conftest import T0, insert_cdr


@pytest.fixture()
def calls(world, pg):
    """30 CDRs over 3 days; some share a start_stamp (ties broken by id)."""
    ids = []
    for i in range(30):
        acme = i % 3 != 0
        ids.append(insert_cdr(
            pg, start_stamp=T0 + timedelta(hours=2 * (i // 2)),  # pairs share a timestamp
            customer_id=(world["acme"] if acme else world["beta"]).id,
            endpoint_id=(world["ep_acme"] if acme else world["ep_beta"]).id,
            provider_id=(world["carrier_a"] if i % 2 else world["carrier_b"]).id,
            gateway="gw_a1" if i % 2 else "gw_b1",
            destination="336123456" if i % 5 == 0 else "33123456",
            billsec=0 if i % 4 == 0 else 30 + i, duration=40 + i,
            sell_amount=Decimal("0") if i % 4 == 0 else Decimal("0.010000") + Decimal(i) / 1000,
            cost_amount=Decimal("0") if i % 4 == 0 else Decimal("0.004000"),
            hangup_cause="NO_ANSWER" if i % 4 == 0 else "NORMAL_CLEARING",
            status="unrated" if i == 7 else "rated", unrated_reason="no_sell_rate" if i == 7 else None))
    return ids


def test_first_page_is_newest_first(pg, calls):
    result = services.page(pg, CdrFilter(), size=10)
    stamps = [(r["start_stamp"], r["id"]) for r in result.rows]
    assert stamps == sorted(stamps, reverse=True)
    assert len(result.rows) == 10 and result.older is not None and result.newer is None


def test_keyset_pages_cover_everything_once_with_ties(pg, calls):
    seen, token, pages = [], None, 0
    while True:
        result = services.page(pg, CdrFilter(), older_than=token, size=7)
        seen += [r["id"] for r in result.rows]
        pages += 1
        if not result.older:
            break
        token = result.older.encode()
    assert sorted(seen) == sorted(calls) and len(seen) == len(set(seen)) == 30
    assert pages == 5


def test_keyset_newer_goes_back_to_the_same_page(pg, calls):
    first = services.page(pg, CdrFilter(), size=7)
    second = services.page(pg, CdrFilter(), older_than=first.older.encode(), size=7)
    back = services.page(pg, CdrFilter(), newer_than=second.newer.encode(), size=7)
    assert [r["id"] for r in back.rows] == [r["id"] for r in first.rows]
    assert back.newer is None  # it is the first page again
    # New calls arriving meanwhile do not shift a later page.
    insert_cdr(pg, start_stamp=T0 + timedelta(days=5))
    again = services.page(pg, CdrFilter(), older_than=first.older.encode(), size=7)
    assert [r["id"] for r in again.rows] == [r["id"] for r in second.rows]


def test_filters(pg, world, calls):
    def ids(**kw):
        out, token = [], None
        while True:
            page = services.page(pg, CdrFilter(**kw), older_than=token, size=100)
            out += page.rows
            if not page.older:
                return out
            token = page.older.encode()

    assert {r["customer"] for r in ids(customer_id=world["beta"].id)} == {"beta"}
    assert len(ids(customer_id=world["beta"].id)) == 10
    assert {r["endpoint"] for r in ids(endpoint_id=world["ep_acme"].id)} == {"acme-pbx"}
    assert {r["provider"] for r in ids(provider_id=world["carrier_a"].id)} == {"carrier_a"}
    assert len(ids(gateway="gw_b1")) == 15
    assert len(ids(prefix="336")) == 6
    assert len(ids(hangup_cause="NO_ANSWER")) == 8
    assert len(ids(answered="no")) == 8 and len(ids(answered="yes")) == 22
    assert [r["unrated_reason"] for r in ids(status="unrated")] == ["no_sell_rate"]
    day1 = T0.date()
    assert len(ids(date_from=day1, date_to=day1)) == 12           # hours 12..22 -> 6 pairs
    assert len(ids(date_from=day1 + timedelta(days=1))) == 18
    assert ids(date_to=day1 - timedelta(days=1)) == []


def test_bad_cursor_and_prefix_are_errors(pg):
    with pytest.raises(services.CdrError):
        services.page(pg, CdrFilter(), older_than="garbage")
    with pytest.raises(services.CdrError):
        services.page(pg, CdrFilter(prefix="33'; --"))


def test_totals_are_exact(pg, world, calls):
    t = services.totals(pg, CdrFilter(customer_id=world["beta"].id))
    beta = [i for i in range(30) if i % 3 == 0]
    answered = [i for i in beta if i % 4]
    assert t["calls"] == 10 and t["answered"] == len(answered) == 7
    billsec = sum(30 + i for i in answered)
    assert t["billsec"] == billsec
    revenue = sum(Decimal("0.010000") + Decimal(i) / 1000 for i in answered)
    assert t["revenue"] == revenue and t["cost"] == Decimal("0.028000")
    assert t["margin"] == revenue - Decimal("0.028000")
    assert t["minutes"] == (Decimal(billsec) / 60).quantize(Decimal("0.01"))
    assert t["asr"] == Decimal("70.00")
    assert t["acd"] == (Decimal(billsec) / 7).quantize(Decimal("0.1"))


def test_metrics_rounding_half_up():
    m = services.metrics(calls=3, answered=2, billsec=3, revenue="0.5", cost="0.25")
    assert m["minutes"] == Decimal("0.05")       # 0.05 exactly
    assert m["asr"] == Decimal("66.67")          # 66.666.. -> 66.67
    assert m["acd"] == Decimal("1.5")
    assert services.metrics(0, 0, 0, 0, 0)["asr"] is None


def test_export_contents(pg, world, calls):
    text = "".join(services.export_csv(pg, CdrFilter(customer_id=world["beta"].id)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10 and {r["customer"] for r in rows} == {"beta"}
    assert rows[0]["start_stamp"] <= rows[-1]["start_stamp"]
    assert list(rows[0]) == services.EXPORT_HEADER
    assert sum(Decimal(r["sell_amount"]) for r in rows) == services.totals(pg, CdrFilter(customer_id=world["beta"].id))["revenue"]


def test_export_streams_in_batches(pg, calls):
    chunks = services.export_csv(pg, CdrFilter(), batch=4)
    header = next(chunks)
    assert header.startswith("start_stamp,") and header.count("\n") == 1
    first = next(chunks)
    assert first.count("\n") == 4       # one batch, not the whole set
    rest = list(chunks)
    assert sum(c.count("\n") for c in rest) == 26


def test_page_and_filters_render(admin_client, world, calls):
    page = admin_client.get(f"/admin/cdrs?customer_id={world['beta'].id}").get_data(as_text=True)
    assert page.count("data-cdr-id=") == 10
    assert "compute totals" in page
    page = admin_client.get(f"/admin/cdrs?customer_id={world['beta'].id}&totals=1").get_data(as_text=True)
    assert 'data-total="calls">' in page and "70.00" in page


def test_pages_via_links(admin_client, calls):
    import re
    page = admin_client.get("/admin/cdrs").get_data(as_text=True)
    assert page.count("data-cdr-id=") == 30
    page = admin_client.get("/admin/cdrs?older=bogus")
    assert page.status_code == 302


def test_totals_json(admin_client, world, calls):
    data = admin_client.get(f"/admin/cdrs/totals?customer_id={world['beta'].id}").get_json()
    assert data["totals"]["calls"] == 10 and data["totals"]["asr"] == "70.00"
    assert data["display"]["cost"] == "0.03 EUR"    # 0.028 at the currency's 2 decimals


def test_export_endpoint_streams(admin_client, world, calls):
    response = admin_client.get(f"/admin/cdrs/export.csv?gateway=gw_a1")
    assert response.is_streamed and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 15 and {r["gateway"] for r in rows} == {"gw_a1"}


def test_export_rejects_bad_filter(admin_client):
    assert admin_client.get("/admin/cdrs/export.csv?prefix=abc").status_code == 400


def test_invalid_filter_shows_error_beside_field(admin_client, calls):
    page = admin_client.get("/admin/cdrs?prefix=abc&date_from=2026-03-12&date_to=2026-03-10").get_data(as_text=True)
    assert "digits only" in page and "the end is before the start" in page


def test_unrated_raw_and_rerate_guard(admin_client, pg, world):
    with pg.cursor() as cur:
        # no billing variables: the billing trigger keeps the row as unrated, missing_customer
        cur.execute("""INSERT INTO billing.fs_cdr (uuid, destination_number, start_stamp, billsec)
                       VALUES ('raw-1', '999', now(), 10) RETURNING id""")
        fs_id = cur.fetchone()[0]
    assert services.unrated_count(pg) == 1
    page = admin_client.get("/admin/cdrs?status=unrated").get_data(as_text=True)
    assert "missing_customer" in page
    if services.rerate_available(pg):
        assert "cdr_rerate" not in page
    else:
        assert "billing_private.rerate_fs_cdr" in page and "disabled" in page
        response = admin_client.post(f"/admin/cdrs/raw/{fs_id}/rerate", data={"next": "//evil.example/"})
        assert response.headers["Location"].startswith("/admin/cdrs")
        assert "does not have yet" in admin_client.get(response.headers["Location"]).get_data(as_text=True)
