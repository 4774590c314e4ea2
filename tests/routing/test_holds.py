"""Holds and max_duration: the money a call may spend is reserved when it is routed.

These tests hold the whole max_duration (settings.quota_seconds NULL, CONTRACT 1 as in
revision 1 of CONTRACT 1b); credit in quotas is tests/routing/test_quotas.py."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.routing.conftest import holds, rejected, route, set_settings


@pytest.fixture(autouse=True)
def whole_max_duration_holds(pg):
    set_settings(pg, quota_seconds=None)


def _customer(world, balance, prefix_rate, increment, ip, **rate_kw):
    """A customer with its own card holding one rate for 33 and an IP endpoint."""
    card = factories.ratecard()
    factories.sell_rate(card, "33", prefix_rate, increment, **rate_kw)
    c = factories.customer(balance=balance, ratecards=[card])
    factories.endpoint(c, world.perms["std"], ip=f"{ip}/32")
    return c


@pytest.mark.parametrize("balance,rate,increment,fee,min_dur,max_duration,hold", [
    ("1.00", "0.0600", "60/60", "0", 0, 960, "0.960000"),      # 16 whole minutes
    ("1.00", "0.0600", "30/6", "0", 0, 996, "0.996000"),
    ("1.00", "0.0600", "1/1", "0", 0, 1000, "1.000000"),
    ("1.00", "0.0600", "1/1", "0.10", 0, 900, "1.000000"),     # connect fee first
    ("1.00", "0.0700", "30/6", "0.05", 0, 810, "0.995000"),    # 0.05 + 810 s x 0.07 / 60; 816 s would cost 1.002
    ("0.10", "0.0600", "1/1", "0", 90, 100, "0.100000"),       # minimum duration (90 s) fits, then seconds
    ("0.13", "0.0600", "60/60", "0", 90, 120, "0.120000"),     # minimum 90 s billed as 120 s: 2 minutes
    ("0.05", "0.0600", "60/60", "0", 0, None, None),           # first minute does not fit
    ("0.08", "0.0600", "1/1", "0", 90, None, None),            # minimum duration does not fit
])
def test_max_duration_and_hold_per_increment_scheme(world, pg, balance, rate, increment, fee, min_dur,
                                                    max_duration, hold):
    c = _customer(world, balance, rate, increment, "192.0.2.70", connect_fee=Decimal(fee), min_duration=min_dur)
    rows = route(pg, "33123456789", ip="192.0.2.70")
    if max_duration is None:
        assert rejected(rows) == "insufficient_funds"
        assert holds(pg, c.id) == []
        return
    assert rows[0]["max_duration"] == max_duration
    [h] = holds(pg, c.id)
    first, nxt = map(int, increment.split("/"))
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.charge(%s, %s, %s, %s, %s, %s)",
                    (max_duration, Decimal(rate), Decimal(fee), min_dur, first, nxt))
        expected_hold = cur.fetchone()[0]
        # one more increment would not have fitted
        cur.execute("SELECT billing_private.charge(%s, %s, %s, %s, %s, %s)",
                    (max_duration + nxt, Decimal(rate), Decimal(fee), min_dur, first, nxt))
        next_charge = cur.fetchone()[0]
    assert h["amount"] == expected_hold <= Decimal(balance) < next_charge
    assert h["amount"] == Decimal(hold)
    assert h["max_duration"] == max_duration and h["sell_rate"] == Decimal(rate)
    assert h["destination"] == "33123456789" and h["customer_id"] == c.id


def test_hold_lifetime_is_ringing_then_max_duration_plus_grace(world, pg):
    """Every route may ring for ring_timeout_seconds before the grant runs (CONTRACT 1b)."""
    set_settings(pg, hold_grace_seconds=120, ring_timeout_seconds=30)
    rows = route(pg, "33123456789")                         # 10.00 at 0.02/min: capped at 14400
    [h] = holds(pg)
    assert h["max_duration"] == h["granted_seconds"] == 14400
    assert h["lifetime"] == timedelta(seconds=len(rows) * 30 + 14400 + 120)
    assert h["amount"] == Decimal("4.800000")


def test_max_call_seconds_caps_the_call(world, pg):
    set_settings(pg, max_call_seconds=600)
    assert route(pg, "33123456789")[0]["max_duration"] == 600
    assert holds(pg)[0]["amount"] == Decimal("0.200000")


def test_holds_reduce_the_available_funds(world, pg):
    # 10.00 at 0.02/min, capped at 14400 s = 4.80 per call
    assert route(pg, "33123456789", uuid="a")[0]["max_duration"] == 14400
    assert route(pg, "33123456789", uuid="b")[0]["max_duration"] == 14400
    third = route(pg, "33123456789", uuid="c")[0]            # 0.40 left = 20 minutes
    assert third["max_duration"] == 1200
    assert rejected(route(pg, "33123456789", uuid="d")) == "insufficient_funds"
    assert sum(h["amount"] for h in holds(pg)) == Decimal("10.000000")


def test_same_uuid_replaces_its_hold(world, pg):
    set_settings(pg, max_call_seconds=600)
    route(pg, "33123456789", uuid="same")
    first = holds(pg)
    route(pg, "33612345678", uuid="same")                    # re-routed to a mobile number
    second = holds(pg)
    assert len(first) == len(second) == 1
    assert second[0]["destination"] == "33612345678"
    assert second[0]["amount"] == Decimal("0.800000")        # 600 s at 0.08, not added to the first


def test_replacing_a_hold_does_not_count_the_old_one_against_the_funds(world, pg):
    c = factories.customer("tight", balance="0.10", ratecards=[world.card])
    factories.endpoint(c, world.perms["std"], ip="192.0.2.80/32")
    for _ in range(3):
        row = route(pg, "33123456789", ip="192.0.2.80", uuid="retry")[0]
        assert row["ok"] and row["max_duration"] == 300       # 0.10 / 0.02 = 5 minutes each time
    assert len(holds(pg, c.id)) == 1


def test_a_refused_call_places_no_hold_and_keeps_the_old_one(world, pg):
    route(pg, "33123456789", uuid="x")
    assert rejected(route(pg, "49301234", uuid="x")) == "unknown_destination"
    assert [h["destination"] for h in holds(pg)] == ["33123456789"]


def test_preview_places_no_hold_and_returns_the_same_rows(world, pg):
    preview = route(pg, "33123456789", preview=True)
    assert holds(pg) == []
    assert route(pg, "33123456789") == preview
    assert len(holds(pg)) == 1


def test_preview_reports_refusals_like_route_call(world, pg):
    assert rejected(route(pg, "33891234567", preview=True)) == "destination_not_allowed"
    assert rejected(route(pg, "abc", preview=True)) == "invalid_number"


def test_free_rate_gets_the_cap(world, pg):
    c = _customer(world, "0", "0", "60/60", "192.0.2.90")
    set_settings(pg, max_call_seconds=3600)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.provider_rates SET rate = 0 WHERE prefix = '33'")
    assert route(pg, "33123456789", ip="192.0.2.90")[0]["max_duration"] == 3600
    assert holds(pg, c.id)[0]["amount"] == 0


def test_deleting_an_endpoint_deletes_its_holds(world, pg):
    """call_holds has no foreign keys (0013): a trigger does what ON DELETE CASCADE did."""
    assert route(pg, "33123456789", ip=None, sip_user="acme100", uuid="sip-call")[0]["ok"]
    assert route(pg, "33123456789", uuid="ip-call")[0]["ok"]
    with pg.cursor() as cur:
        cur.execute("DELETE FROM billing.endpoints WHERE id = %s", (world.sip_endpoint.id,))
    assert [h["call_uuid"] for h in holds(pg, world.customer.id)] == ["ip-call"]
