"""Credit in quotas (CONTRACT 1b): a hold covers one quota of the call, the switch asks
billing.reauthorize_call for more, and the funds are never promised twice."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.routing.conftest import holds, rejected, route, set_settings

NUMBER = "33123456789"


def reauthorize(pg, uuid, answered=0):
    with pg.cursor() as cur:
        cur.execute("SELECT * FROM billing.reauthorize_call(%s, %s)", (uuid, answered))
        assert [d.name for d in cur.description] == ["ok", "reason", "granted_seconds", "final"]
        [row] = cur.fetchall()
        return dict(zip(("ok", "reason", "granted_seconds", "final"), row))


def customer(world, balance, rate="0.0100", increment="1/1", ip="192.0.2.60", **kw):
    card = factories.ratecard()
    factories.sell_rate(card, "33", rate, increment, **{k: v for k, v in kw.items()
                                                         if k in ("connect_fee", "min_duration")})
    c = factories.customer(balance=balance, ratecards=[card],
                           **{k: v for k, v in kw.items() if k not in ("connect_fee", "min_duration")})
    factories.endpoint(c, world.perms["std"], ip=f"{ip}/32")
    return c


def top_up(pg, customer_id, amount):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.ledger (customer_id, kind, amount) VALUES (%s, 'topup', %s)",
                    (customer_id, Decimal(amount)))


def test_a_hold_covers_one_quota_not_the_whole_call(world, pg):
    """10.00 at 0.02/min: the call may last the 4 h cap, the hold covers 300 s (0.10)."""
    rows = route(pg, NUMBER)
    assert rows[0]["max_duration"] == 14400 and rows[0]["granted_seconds"] == 300
    assert {r["granted_seconds"] for r in rows} == {300}
    [h] = holds(pg)
    assert h["granted_seconds"] == 300 and h["max_duration"] == 14400 and h["grants"] == 1
    assert h["amount"] == Decimal("0.100000")                  # 5 minutes at 0.02


def test_a_thousand_simultaneous_calls_on_100_at_one_cent(world, pg):
    """Seen: holding the whole max_duration let 100.00 at 0.01/min make 41 calls at once."""
    c = customer(world, "100.00")
    for i in range(1000):
        row = route(pg, NUMBER, ip="192.0.2.60", uuid=f"bulk-{i}")[0]
        assert row["ok"], (i, row)
    assert len(holds(pg, c.id)) == 1000
    assert sum(h["amount"] for h in holds(pg, c.id)) == Decimal("50.000000")   # 0.05 each


@pytest.mark.parametrize("increment, quota, granted", [
    ("60/60", 300, 300), ("45/45", 300, 315), ("30/6", 100, 102), ("1/1", 7, 7), ("60/60", 30, 60),
])
def test_the_grant_is_the_quota_rounded_up_to_the_increments(world, pg, increment, quota, granted):
    set_settings(pg, reauth_margin_seconds=2, quota_seconds=quota)
    customer(world, "50.00", increment=increment)
    assert route(pg, NUMBER, ip="192.0.2.60")[0]["granted_seconds"] == granted


def test_a_call_that_fits_in_one_quota_is_granted_whole(world, pg):
    customer(world, "0.02")                                     # 120 s at 0.01/min
    row = route(pg, NUMBER, ip="192.0.2.60")[0]
    assert row["max_duration"] == row["granted_seconds"] == 120


def test_reauthorization_extends_by_quotas_until_the_money_runs_out(world, pg):
    """Funds for 2.5 quotas: two more grants, the second one final and short."""
    c = customer(world, "0.125")                                # 750 s at 0.01/min
    route(pg, NUMBER, ip="192.0.2.60", uuid="long")
    assert holds(pg, c.id)[0]["granted_seconds"] == 300
    assert reauthorize(pg, "long", 290) == {"ok": True, "reason": None, "granted_seconds": 600, "final": False}
    assert reauthorize(pg, "long", 590) == {"ok": True, "reason": None, "granted_seconds": 750, "final": True}
    assert reauthorize(pg, "long", 740) == {"ok": False, "reason": "insufficient_funds", "granted_seconds": 750,
                                            "final": True}
    [h] = holds(pg, c.id)
    assert (h["granted_seconds"], h["grants"], h["amount"]) == (750, 3, Decimal("0.125000"))


def test_the_hold_expires_at_the_end_of_its_last_grant(world, pg):
    set_settings(pg, hold_grace_seconds=30)
    customer(world, "5.00")
    route(pg, NUMBER, ip="192.0.2.60", uuid="x")
    reauthorize(pg, "x", 295)
    with pg.cursor() as cur:
        cur.execute("SELECT expires_at - now() FROM billing.call_holds WHERE call_uuid = 'x'")
        left = cur.fetchone()[0]
    assert left == timedelta(seconds=600 - 295 + 30)


def test_other_calls_holds_count_against_a_reauthorization(world, pg):
    c = customer(world, "0.10")                                 # 600 s at 0.01/min in all
    route(pg, NUMBER, ip="192.0.2.60", uuid="first")            # holds 300 s (0.05)
    route(pg, NUMBER, ip="192.0.2.60", uuid="second")           # holds the other 300 s
    assert rejected(route(pg, NUMBER, ip="192.0.2.60", uuid="third")) == "insufficient_funds"
    assert reauthorize(pg, "first", 290)["reason"] == "insufficient_funds"
    assert sum(h["amount"] for h in holds(pg, c.id)) == Decimal("0.100000")


def test_a_top_up_during_the_call_keeps_it_going(world, pg):
    c = customer(world, "0.06")                                 # 360 s: one quota and a bit
    route(pg, NUMBER, ip="192.0.2.60", uuid="talk")
    top_up(pg, c.id, "1.00")
    assert reauthorize(pg, "talk", 290) == {"ok": True, "reason": None, "granted_seconds": 600, "final": False}


def test_no_reauthorization_beyond_max_call_seconds(world, pg):
    set_settings(pg, max_call_seconds=500)
    customer(world, "50.00")
    route(pg, NUMBER, ip="192.0.2.60", uuid="cap")
    assert reauthorize(pg, "cap", 290) == {"ok": True, "reason": None, "granted_seconds": 500, "final": True}
    assert reauthorize(pg, "cap", 490)["reason"] == "max_call_seconds"


def test_the_month_spend_limit_caps_a_reauthorization(world, pg):
    c = customer(world, "50.00", ip="192.0.2.61")
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.endpoints SET spend_limit_month = 0.08 WHERE customer_id = %s", (c.id,))
    route(pg, NUMBER, ip="192.0.2.61", uuid="limited")
    assert reauthorize(pg, "limited", 290) == {"ok": True, "reason": None, "granted_seconds": 480, "final": True}


def test_a_disabled_account_gets_no_more_credit(world, pg):
    c = customer(world, "50.00")
    route(pg, NUMBER, ip="192.0.2.60", uuid="stopped")
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.customers SET enabled = false WHERE id = %s", (c.id,))
    assert reauthorize(pg, "stopped", 290) == {"ok": False, "reason": "account_disabled", "granted_seconds": 300,
                                               "final": True}


def test_unknown_call(world, pg):
    assert reauthorize(pg, "never-routed") == {"ok": False, "reason": "unknown_call", "granted_seconds": None,
                                               "final": True}
    assert reauthorize(pg, "") ["reason"] == "unknown_call"


def test_the_grant_is_priced_with_the_hold_s_rate_terms(world, pg):
    """Connect fee and minimum duration are charged once, with the first grant."""
    c = customer(world, "5.00", rate="0.0600", increment="60/60", connect_fee=Decimal("0.10"), min_duration=120)
    route(pg, NUMBER, ip="192.0.2.60", uuid="fee")
    assert holds(pg, c.id)[0]["amount"] == Decimal("0.400000")          # 0.10 + 5 min x 0.06
    reauthorize(pg, "fee", 290)
    assert holds(pg, c.id)[0]["amount"] == Decimal("0.700000")          # 0.10 + 10 min x 0.06


def test_no_quota_setting_holds_the_whole_call(world, pg):
    set_settings(pg, quota_seconds=None)
    row = route(pg, NUMBER)[0]
    assert row["granted_seconds"] == row["max_duration"] == 14400


def test_the_preview_shows_the_grant_without_a_hold(world, pg):
    row = route(pg, NUMBER, preview=True)[0]
    assert row["granted_seconds"] == 300 and holds(pg) == []


def test_max_call_seconds_off_the_increment_grid(world, pg):
    """Seen: cap 100 s, 60/60 at 0.60/min, 1.00 available: max_duration 100 was held as
    1.20 (two minutes) -- more than the money. The longest call whose charge fits is one
    minute."""
    set_settings(pg, max_call_seconds=100, quota_seconds=None)
    c = customer(world, "1.00", rate="0.6000", increment="60/60")
    row = route(pg, NUMBER, ip="192.0.2.60")[0]
    assert row["max_duration"] == 60
    assert holds(pg, c.id)[0]["amount"] == Decimal("0.600000") <= Decimal("1.00")
    # with money enough, the cap itself is the answer
    top_up(pg, c.id, "9.00")
    assert route(pg, NUMBER, ip="192.0.2.60", uuid="rich")[0]["max_duration"] == 100


def test_the_hold_outlives_the_longest_failover_chain(world, pg):
    """Seen: expires_at was set-up + max_duration + grace while the hang-up counts from
    the answer: with max_call_seconds 20 and grace 2 a ringing call's hold was swept. Now
    every route may ring ring_timeout_seconds (route.lua's call_timeout) first."""
    set_settings(pg, max_call_seconds=20, hold_grace_seconds=2, ring_timeout_seconds=60)
    for i in range(3, 11):                                      # ten carriers in all
        world.provider(f"carrier_{i}", rates={"33": "0.0090"})
    rows = route(pg, NUMBER, uuid="slow")
    assert len(rows) == 10
    [h] = holds(pg)
    assert h["lifetime"] == timedelta(seconds=10 * 60 + 20 + 2)
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.sweep_stale_holds()")
        assert cur.fetchone()[0] == 0
    assert len(holds(pg)) == 1
