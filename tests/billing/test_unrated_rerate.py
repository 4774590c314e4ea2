"""Unratable CDRs are kept and visible, and re-rating fixes them and corrects the books."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg2
import pytest

from tests import factories
from tests.billing.conftest import T0, balance, cdr_row, insert_cdr, ledger_sum, one, rated, scalar


def _update_fs(column, value):
    def fix(pg, world, fs_id):
        with pg.cursor() as cur:
            cur.execute(f"UPDATE billing.fs_cdr SET {column} = %s WHERE id = %s", (value(world), fs_id))
    return fix


def _add_sell_rate(pg, world, fs_id):
    factories.sell_rate(world.ratecard, "49", "0.0200", "60/60")


def _add_cost_rate(pg, world, fs_id):
    factories.provider_rate(world.provider, "49", "0.0050", "1/1")


UNRATABLE = [
    ("missing_customer", dict(billing_customer_id=None), _update_fs("billing_customer_id", lambda w: w.customer.id)),
    ("unknown_customer", dict(billing_customer_id=987654), _update_fs("billing_customer_id", lambda w: w.customer.id)),
    ("missing_destination", dict(billing_destination=None), _update_fs("billing_destination", lambda w: "33123456789")),
    ("invalid_destination", dict(billing_destination="+33 1"), _update_fs("billing_destination", lambda w: "33123456789")),
    ("missing_start_stamp", dict(start_stamp=None), _update_fs("start_stamp", lambda w: T0)),
    ("missing_billsec", dict(billsec=None), _update_fs("billsec", lambda w: 61)),
    ("negative_billsec", dict(billsec=-5), _update_fs("billsec", lambda w: 61)),
    ("end_before_start", dict(end_stamp=T0 - timedelta(seconds=10)), _update_fs("end_stamp", lambda w: T0 + timedelta(seconds=66))),
    ("missing_provider", dict(billing_provider_id=None), _update_fs("billing_provider_id", lambda w: w.provider.id)),
    ("unknown_provider", dict(billing_provider_id=987654), _update_fs("billing_provider_id", lambda w: w.provider.id)),
]


@pytest.mark.parametrize("reason,overrides,fix", UNRATABLE, ids=[u[0] for u in UNRATABLE])
def test_unratable_cdr_is_kept_visible_and_reratable(pg, world, reason, overrides, fix):
    row = cdr_row(world, **{"billsec": 61, **overrides})
    assert insert_cdr(pg, row) == 1, "an unratable CDR must still be stored"
    fs_id, status, got_reason = one(pg, "SELECT id, status, unrated_reason FROM billing.fs_cdr WHERE uuid = %s", row["uuid"])
    assert (status, got_reason) == ("unrated", reason)
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["unrated_reason"], cdr["sell_amount"]) == ("unrated", reason, 0)
    assert balance(pg, world.customer.id) == Decimal("10.00")

    fix(pg, world, fs_id)
    assert scalar(pg, "SELECT billing_private.rerate_fs_cdr(%s)", fs_id) == "rated"
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["unrated_reason"], cdr["sell_amount"]) == ("rated", None, Decimal("0.040000"))
    assert cdr["customer_id"] == world.customer.id
    kind, amount, call_uuid = one(pg, "SELECT kind, amount, call_uuid FROM billing.ledger WHERE customer_id = %s "
                                      "ORDER BY id DESC LIMIT 1", world.customer.id)
    assert (kind, amount, call_uuid) == ("rerate", Decimal("-0.040000"), row["uuid"])
    assert balance(pg, world.customer.id) == Decimal("9.960000") == ledger_sum(pg, world.customer.id)
    # re-rating again changes nothing
    assert scalar(pg, "SELECT billing_private.rerate_fs_cdr(%s)", fs_id) == "rated"
    assert balance(pg, world.customer.id) == Decimal("9.960000")


@pytest.mark.parametrize("reason,fix", [("no_sell_rate", [_add_sell_rate, _add_cost_rate]),
                                        ("no_cost_rate", [_add_cost_rate])])
def test_missing_rates_then_added(pg, world, reason, fix):
    if reason == "no_cost_rate":
        _add_sell_rate(pg, world, None)
    row = cdr_row(world, billsec=61, destination="4912345")
    insert_cdr(pg, row)
    fs_id, got = one(pg, "SELECT id, unrated_reason FROM billing.fs_cdr WHERE uuid = %s", row["uuid"])
    assert got == reason
    for f in fix:
        f(pg, world, fs_id)
    assert scalar(pg, "SELECT billing_private.rerate_fs_cdr(%s)", fs_id) == "rated"
    assert rated(pg, row["uuid"])["cost_amount"] == Decimal("0.005083")
    assert balance(pg, world.customer.id) == Decimal("9.960000")


def _rerate(pg, start, end, customer_id=None):
    return one(pg, "SELECT * FROM billing_private.rerate(%s, %s, %s)", start, end, customer_id)


def test_rerate_after_price_change_adds_adjustments_never_edits_history(pg, world):
    rows = [cdr_row(world, billsec=61, start=T0 + timedelta(minutes=i)) for i in range(3)]
    for r in rows:
        insert_cdr(pg, r)
    calls_before = list(map(tuple, _ledger(pg, world.customer.id)))
    assert balance(pg, world.customer.id) == Decimal("9.880000")
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = 0.0300 WHERE ratecard_id = %s AND prefix = '33'", (world.ratecard.id,))
    assert _rerate(pg, T0, T0 + timedelta(hours=1)) == (3, 1, 0)
    after = _ledger(pg, world.customer.id)
    assert list(map(tuple, after[:len(calls_before)])) == calls_before     # history untouched
    kind, amount = after[-1][1], after[-1][2]
    assert (kind, amount) == ("rerate", Decimal("-0.060000"))              # 3 x (0.06 - 0.04)
    assert balance(pg, world.customer.id) == Decimal("9.820000") == ledger_sum(pg, world.customer.id)
    assert all(rated(pg, r["uuid"])["sell_amount"] == Decimal("0.060000") for r in rows)
    assert scalar(pg, "SELECT amount FROM billing.endpoint_month_spend WHERE endpoint_id = %s",
                  world.endpoint.id) == Decimal("0.180000")
    # idempotent: nothing left to correct
    assert _rerate(pg, T0, T0 + timedelta(hours=1)) == (3, 0, 0)
    assert balance(pg, world.customer.id) == Decimal("9.820000")


def test_rerate_outside_the_period_or_other_customer_is_untouched(pg, world):
    other = factories.customer(balance="5", ratecards=[world.ratecard])
    inside = cdr_row(world, billsec=60)
    outside = cdr_row(world, billsec=60, start=T0 + timedelta(days=3))
    theirs = cdr_row(world, billsec=60, billing_customer_id=other.id)
    for r in (inside, outside, theirs):
        insert_cdr(pg, r)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = 0.0300 WHERE ratecard_id = %s AND prefix = '33'", (world.ratecard.id,))
    assert _rerate(pg, T0, T0 + timedelta(days=1), world.customer.id) == (1, 1, 0)
    assert rated(pg, inside["uuid"])["sell_amount"] == Decimal("0.030000")
    assert rated(pg, outside["uuid"])["sell_amount"] == Decimal("0.020000")
    assert rated(pg, theirs["uuid"])["sell_amount"] == Decimal("0.020000")
    assert balance(pg, other.id) == Decimal("4.980000")


def test_rerate_when_the_rate_disappeared_refunds_and_marks_unrated(pg, world):
    row = cdr_row(world, billsec=60)
    insert_cdr(pg, row)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET blocked = true WHERE ratecard_id = %s", (world.ratecard.id,))
    assert _rerate(pg, T0, T0 + timedelta(hours=1)) == (0, 1, 1)
    assert rated(pg, row["uuid"])["status"] == "unrated"
    assert balance(pg, world.customer.id) == Decimal("10.000000") == ledger_sum(pg, world.customer.id)


def test_rerate_moves_a_call_to_the_fixed_customer(pg, world):
    wrong = factories.customer(balance="5", ratecards=[world.ratecard])
    row = cdr_row(world, billsec=60, billing_customer_id=wrong.id)
    insert_cdr(pg, row)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.fs_cdr SET billing_customer_id = %s WHERE uuid = %s", (world.customer.id, row["uuid"]))
    _rerate(pg, T0, T0 + timedelta(hours=1))
    assert balance(pg, wrong.id) == Decimal("5.000000")
    assert balance(pg, world.customer.id) == Decimal("9.980000")


def test_rerate_rejects_an_empty_period(pg):
    with pytest.raises(psycopg2.errors.InvalidParameterValue):
        _rerate(pg, T0, T0)


def _ledger(pg, customer_id):
    with pg.cursor() as cur:
        cur.execute("SELECT id, kind, amount, call_uuid FROM billing.ledger WHERE customer_id = %s ORDER BY id",
                    (customer_id,))
        return cur.fetchall()


def test_rerate_rates_raw_rows_loaded_without_the_trigger(pg, world):
    rows = [cdr_row(world, billsec=61), cdr_row(world, billsec=0)]
    with pg.cursor() as cur:
        cur.execute("ALTER TABLE billing.fs_cdr DISABLE TRIGGER tg_fs_cdr__bill")
        for r in rows:
            insert_cdr(pg, r)
        cur.execute("ALTER TABLE billing.fs_cdr ENABLE TRIGGER tg_fs_cdr__bill")
    assert scalar(pg, "SELECT count(*) FROM billing.cdr") == 0
    assert _rerate(pg, T0, T0 + timedelta(hours=1)) == (2, 1, 0)
    assert rated(pg, rows[0]["uuid"])["sell_amount"] == Decimal("0.040000")
    assert rated(pg, rows[1]["uuid"])["status"] == "rated"
    assert scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE status = 'rated'") == 2
    assert balance(pg, world.customer.id) == Decimal("9.960000") == ledger_sum(pg, world.customer.id)
