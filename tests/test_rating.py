"""The rating rule (docs/rounding.md) with exact decimal expectations."""
from decimal import Decimal

import pytest


def q(pg, sql, *args):
    with pg.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


@pytest.mark.parametrize("billsec,min_dur,inc,expected", [
    (0, 0, "60/60", 0),        # unanswered
    (1, 0, "60/60", 60),
    (60, 0, "60/60", 60),
    (61, 0, "60/60", 120),
    (1, 0, "30/6", 30),
    (30, 0, "30/6", 30),
    (31, 0, "30/6", 36),
    (37, 0, "30/6", 42),
    (7, 0, "1/1", 7),
    (5, 20, "1/1", 20),        # minimum duration
    (5, 45, "30/6", 48),       # minimum duration, then increments
    (125, 45, "30/6", 126),
])
def test_billed_seconds(pg, billsec, min_dur, inc, expected):
    first, nxt = map(int, inc.split("/"))
    assert q(pg, "SELECT billing_private.billed_seconds(%s, %s, %s, %s)", billsec, min_dur, first, nxt) == expected


@pytest.mark.parametrize("billsec,rate,fee,min_dur,inc,expected", [
    (0, "0.0200", "0.05", 0, "60/60", "0"),                 # unanswered: no connect fee either
    (61, "0.0200", "0", 0, "60/60", "0.040000"),
    (31, "0.0800", "0", 0, "30/6", "0.048000"),
    (7, "0.0050", "0", 0, "1/1", "0.000583"),               # 0.00058333.. half-up
    (1, "0.00003", "0", 0, "1/1", "0.000001"),              # 0.0000005 -> half-up to 0.000001
    (10, "0.1000", "0.0500", 30, "1/1", "0.100000"),        # fee + 30 s minimum
])
def test_charge(pg, billsec, rate, fee, min_dur, inc, expected):
    first, nxt = map(int, inc.split("/"))
    got = q(pg, "SELECT billing_private.charge(%s, %s::numeric, %s::numeric, %s, %s, %s)",
            billsec, rate, fee, min_dur, first, nxt)
    assert got == Decimal(expected)


@pytest.mark.parametrize("available,rate,fee,min_dur,inc,cap,expected", [
    ("1.00", "0.0600", "0", 0, "60/60", 14400, 960),     # 1.00 / 0.06 = 16.67 min -> 16 whole minutes
    ("1.00", "0.0600", "0", 0, "1/1", 14400, 1000),
    ("1.00", "0.0600", "0", 0, "30/6", 14400, 996),
    ("1.00", "0.0600", "0.10", 0, "1/1", 14400, 900),    # connect fee first
    ("0.05", "0.0600", "0", 0, "60/60", 14400, 0),       # first minute does not fit
    ("0.05", "0.0600", "0", 60, "1/1", 14400, 0),        # minimum duration does not fit
    ("100", "0.0600", "0", 0, "1/1", 3600, 3600),        # capped
    ("0.01", "0", "0", 0, "60/60", 3600, 3600),          # free calls: the cap
    ("0", "0", "0.01", 0, "60/60", 3600, 0),             # free calls, fee does not fit
])
def test_max_duration_fits_the_money(pg, available, rate, fee, min_dur, inc, cap, expected):
    first, nxt = map(int, inc.split("/"))
    got = q(pg, "SELECT billing_private.max_duration(%s::numeric, %s::numeric, %s::numeric, %s, %s, %s, %s)",
            available, rate, fee, min_dur, first, nxt, cap)
    assert got == expected
    if got:
        charge = q(pg, "SELECT billing_private.charge(%s, %s::numeric, %s::numeric, %s, %s, %s)",
                   got, rate, fee, min_dur, first, nxt)
        assert charge <= Decimal(available)


def test_prefixes_longest_first(pg):
    assert q(pg, "SELECT billing_private.prefixes('336')") == ["336", "33", "3"]
