"""Rate changes are versions, never overwrites: a change from an effective date (now or
later) ends the old row there and starts a new one; the history of a prefix shows them
all; calls are billed at the version valid at their start."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ProviderRate, SellRate
from portal.rateversions import services
from tests import factories
from tests.admin.conftest import audit_rows, flashes
from tests.billing.conftest import cdr_row, insert_cdr, rated

CHANGE = {"rate": "0.0250", "connect_fee": "0", "min_duration": "0", "increment": "60/60"}


def versions(card, prefix="33"):
    return db.session.scalars(select(SellRate).where(SellRate.ratecard_id == card.id, SellRate.prefix == prefix)
                              .order_by(SellRate.valid_from.asc().nullsfirst())).all()


def minute(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture()
def card(db_session):
    card = factories.ratecard("retail")
    factories.sell_rate(card, "33", "0.0200", valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc))
    db.session.commit()
    return card


def test_a_future_change_ends_the_old_version_at_the_effective_date(admin_client, card):
    old = versions(card)[0]
    when = (datetime.now(timezone.utc) + timedelta(days=7)).replace(second=0, microsecond=0)
    response = admin_client.post(f"/admin/rates/{old.id}/edit", data={**CHANGE, "effective_from": minute(when)})
    assert response.status_code == 302 and f"/admin/ratecards/{card.id}/prefixes/33" in response.headers["Location"]
    db.session.expire_all()
    first, second = versions(card)
    assert (first.id, first.rate, first.valid_to) == (old.id, Decimal("0.0200"), when)
    assert (second.rate, second.valid_from, second.valid_to) == (Decimal("0.0250"), when, None)
    entry = audit_rows("rate", "new_version")[0]
    assert entry.details["replaces"] == old.id and entry.details["rate"] == ["0.020000", "0.0250"]
    html = admin_client.get(f"/admin/ratecards/{card.id}/prefixes/33").get_data(as_text=True)
    assert html.count("data-version=") == 2 and 'data-version="current"' in html and 'data-version="scheduled"' in html
    assert "new version" in html and "0.0250 EUR" in html and "0.0200 EUR" in html


def test_calls_are_billed_at_the_version_valid_at_their_start(card, pg, db_session):
    # a priced world around the card: the trigger picks the version by start_stamp
    w = factories.weight()
    perm = factories.permission([w])
    cust = factories.customer(balance="10", ratecards=[card])
    ep = factories.endpoint(cust, perm)
    prov = factories.provider()
    gw = factories.gateway(prov)
    factories.provider_rate(prov, "33", "0.0010")
    old = versions(card)[0]
    when = services.now() + timedelta(hours=1)
    services.change(old, {"rate": Decimal("0.0300"), "connect_fee": 0, "min_duration": 0, "increment_first": 60,
                          "increment_next": 60, "blocked": False}, when, actor="test")
    world = type("W", (), {"customer": cust, "endpoint": ep, "provider": prov, "gateway": gw})
    before, after = cdr_row(world, billsec=60, start=when - timedelta(seconds=1)), cdr_row(world, billsec=60, start=when)
    insert_cdr(pg, before)
    insert_cdr(pg, after)
    assert rated(pg, before["uuid"])["sell_amount"] == Decimal("0.020000")
    assert rated(pg, after["uuid"])["sell_amount"] == Decimal("0.030000")


def test_a_change_in_the_past_is_refused(admin_client, card):
    old = versions(card)[0]
    html = admin_client.post(f"/admin/rates/{old.id}/edit", data={
        **CHANGE, "effective_from": "2026-02-01T00:00"}).get_data(as_text=True)
    assert "must take effect now or later" in html and "re-rate that period" in html
    db.session.expire_all()
    assert len(versions(card)) == 1 and versions(card)[0].rate == Decimal("0.0200")


def test_nothing_changed_is_said(admin_client, card):
    old = versions(card)[0]
    html = admin_client.post(f"/admin/rates/{old.id}/edit", data={**CHANGE, "rate": "0.02"}).get_data(as_text=True)
    assert "Nothing changed" in html and len(versions(card)) == 1


def test_a_scheduled_rate_is_changed_in_place(admin_client, card, db_session):
    start = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=0, microsecond=0)
    scheduled = factories.sell_rate(card, "44", "0.0400", valid_from=start)
    db.session.commit()
    assert admin_client.post(f"/admin/rates/{scheduled.id}/edit", data={**CHANGE, "rate": "0.0450"}).status_code == 302
    db.session.expire_all()
    (row,) = versions(card, "44")
    assert (row.id, row.rate, row.valid_from) == (scheduled.id, Decimal("0.0450"), start)
    assert audit_rows("rate", "update")[0].details["rate"] == ["0.040000", "0.0450"]


def test_end_a_rate_now_or_later_and_the_history_keeps_it(admin_client, card):
    old = versions(card)[0]
    when = (datetime.now(timezone.utc) + timedelta(days=1)).replace(second=0, microsecond=0)
    assert "End rate 33 of retail" in admin_client.get(f"/admin/rates/{old.id}/end").get_data(as_text=True)
    assert admin_client.post(f"/admin/rates/{old.id}/end", data={"at": minute(when)}).status_code == 302
    db.session.expire_all()
    assert versions(card)[0].valid_to == when
    html = admin_client.post(f"/admin/rates/{old.id}/end", data={"at": "2026-01-15T00:00"}).get_data(as_text=True)
    assert "now or later" in html


def test_provider_rates_are_versioned_too(admin_client, db_session):
    prov = factories.provider("carrier_a")
    cost = factories.provider_rate(prov, "33", "0.0050", valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc))
    db.session.commit()
    assert admin_client.post(f"/admin/provider-rates/{cost.id}/edit", data={**CHANGE, "rate": "0.0060",
                                                                             "increment": "1/1"}).status_code == 302
    db.session.expire_all()
    rows = db.session.scalars(select(ProviderRate).where(ProviderRate.provider_id == prov.id)
                              .order_by(ProviderRate.valid_from)).all()
    assert [r.rate for r in rows] == [Decimal("0.0050"), Decimal("0.0060")] and rows[0].valid_to == rows[1].valid_from
    html = admin_client.get(f"/admin/providers/{prov.id}/prefixes/33").get_data(as_text=True)
    assert "Cost rate history" in html and html.count("data-version=") == 2
    assert admin_client.get(f"/admin/providers/{prov.id}/prefixes/99").status_code == 404


def test_the_rates_list_links_to_the_history(admin_client, card):
    html = admin_client.get(f"/admin/ratecards/{card.id}").get_data(as_text=True)
    assert f'href="/admin/ratecards/{card.id}/prefixes/33"' in html and "Change" in html and "End…" in html
