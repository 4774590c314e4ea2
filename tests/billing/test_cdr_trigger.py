"""CDR billing through the fs_cdr trigger (CONTRACT 2): exact amounts, books, duplicates."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg2
import pytest

from tests import factories
from tests.billing.conftest import (T0, balance, build_world_sql, cdr_row, ids_row, insert_cdr, ledger_sum, one,
                                    rated, scalar)


@pytest.mark.parametrize("destination,billsec,sell,cost,billed,cost_billed", [
    # 33 @0.0200 60/60 sell, 0.0050 1/1 cost
    ("33123456789", 61, "0.040000", "0.005083", 120, 61),     # 2 minutes; cost 61 s * 0.005/60 = 0.00508333 half-up
    ("33123456789", 60, "0.020000", "0.005000", 60, 60),
    ("33123456789", 1, "0.020000", "0.000083", 60, 1),        # 0.0000833.. half-up to 6 dp
    ("33123456789", 0, "0", "0", 0, 0),                        # unanswered: free both sides
    # 336 @0.0800 30/6 sell, 0.0300 1/1 cost
    ("33612345678", 31, "0.048000", "0.015500", 36, 31),
    ("33612345678", 5, "0.040000", "0.002500", 30, 5),
    ("33612345678", 37, "0.056000", "0.018500", 42, 37),
])
def test_rating_rules_exact(pg, world, destination, billsec, sell, cost, billed, cost_billed):
    row = cdr_row(world, billsec=billsec, destination=destination)
    assert insert_cdr(pg, row) == 1
    cdr = rated(pg, row["uuid"])
    assert cdr["status"] == "rated" and cdr["unrated_reason"] is None
    assert cdr["sell_amount"] == Decimal(sell)
    assert cdr["cost_amount"] == Decimal(cost)
    assert cdr["margin"] == Decimal(sell) - Decimal(cost)
    assert (cdr["billed_seconds"], cdr["cost_billed_seconds"]) == (billed, cost_billed)
    assert balance(pg, world.customer.id) == Decimal("10.00") - Decimal(sell)
    assert scalar(pg, "SELECT status FROM billing.fs_cdr WHERE uuid = %s", row["uuid"]) == "rated"


def test_connect_fee_and_minimum_duration_on_answered_calls_only(pg, world):
    card = factories.ratecard()
    factories.sell_rate(card, "44", "0.1000", "1/1", connect_fee=Decimal("0.0500"), min_duration=30)
    factories.provider_rate(world.provider, "44", "0.0100", "1/1", connect_fee=Decimal("0.0010"))
    cust = factories.customer(balance="5", ratecards=[card])
    answered = cdr_row(world, billsec=10, destination="441234", billing_customer_id=cust.id)
    unanswered = cdr_row(world, billsec=0, destination="441234", billing_customer_id=cust.id)
    insert_cdr(pg, answered)
    insert_cdr(pg, unanswered)
    a = rated(pg, answered["uuid"])
    assert a["sell_amount"] == Decimal("0.100000")      # 0.05 + 30 s minimum * 0.10/60
    assert a["billed_seconds"] == 30
    assert a["cost_amount"] == Decimal("0.002667")      # 0.001 + 10 * 0.01/60 = 0.0026666.. half-up
    u = rated(pg, unanswered["uuid"])
    assert (u["sell_amount"], u["cost_amount"], u["status"]) == (0, 0, "rated")
    assert balance(pg, cust.id) == Decimal("4.900000")


def test_sell_rate_is_the_one_valid_at_start_stamp(pg, world):
    change = T0 + timedelta(days=1)
    factories.sell_rate(world.ratecard, "44", "0.0100", "60/60", valid_to=change)
    factories.sell_rate(world.ratecard, "44", "0.0500", "60/60", valid_from=change)
    factories.provider_rate(world.provider, "44", "0.0010", "1/1")
    before = cdr_row(world, billsec=60, destination="4420", start=change - timedelta(seconds=1))
    after = cdr_row(world, billsec=60, destination="4420", start=change)
    insert_cdr(pg, before)
    insert_cdr(pg, after)
    assert rated(pg, before["uuid"])["sell_amount"] == Decimal("0.010000")
    assert rated(pg, after["uuid"])["sell_amount"] == Decimal("0.050000")


def test_ledger_entry_hold_release_and_month_spend(pg, world):
    row = cdr_row(world, billsec=61)
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, "
                    "max_duration, destination, expires_at) VALUES (%s, %s, %s, 1, 0.02, 3000, '33123456789', "
                    "now() + interval '1 hour')", (row["uuid"], world.customer.id, world.endpoint.id))
    insert_cdr(pg, row)
    kind, amount, call_uuid = one(pg, "SELECT kind, amount, call_uuid FROM billing.ledger "
                                      "WHERE customer_id = %s AND kind = 'call'", world.customer.id)
    assert (kind, amount, call_uuid) == ("call", Decimal("-0.040000"), row["uuid"])
    assert scalar(pg, "SELECT count(*) FROM billing.call_holds WHERE call_uuid = %s", row["uuid"]) == 0
    assert scalar(pg, "SELECT amount FROM billing.endpoint_month_spend WHERE endpoint_id = %s AND month = %s",
                  world.endpoint.id, T0.date().replace(day=1)) == Decimal("0.040000")
    insert_cdr(pg, cdr_row(world, billsec=30))
    assert scalar(pg, "SELECT amount FROM billing.endpoint_month_spend WHERE endpoint_id = %s",
                  world.endpoint.id) == Decimal("0.060000")
    assert balance(pg, world.customer.id) == ledger_sum(pg, world.customer.id)


def test_unanswered_call_posts_no_ledger_entry_but_releases_hold(pg, world):
    row = cdr_row(world, billsec=0)
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, "
                    "max_duration, destination, expires_at) VALUES (%s, %s, %s, 1, 0.02, 3000, '33', now())",
                    (row["uuid"], world.customer.id, world.endpoint.id))
    insert_cdr(pg, row)
    assert scalar(pg, "SELECT count(*) FROM billing.ledger WHERE call_uuid = %s", row["uuid"]) == 0
    assert scalar(pg, "SELECT count(*) FROM billing.call_holds") == 0


def test_rejected_call_is_a_free_rated_cdr(pg, world):
    row = cdr_row(None, billsec=0, billing_reject_reason="unknown_source")
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["sell_amount"], cdr["customer_id"]) == ("rated", 0, None)


STATS = "SELECT calls, answered, billsec, asr, acd FROM billing.gateway_stats WHERE gateway_id = %s"


def test_gateway_stats_asr_acd(pg, world):
    insert_cdr(pg, cdr_row(world, billsec=60))
    insert_cdr(pg, cdr_row(world, billsec=0))
    insert_cdr(pg, cdr_row(world, billsec=120))
    # the CDRs leave samples; the statistics move when the fold job adds them (0025)
    assert scalar(pg, "SELECT count(*) FROM billing_private.gateway_samples") == 3
    assert one(pg, STATS, world.gateway.id) is None
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 1
    calls, answered, billsec, asr, acd = one(pg, STATS, world.gateway.id)
    # same transaction: now() is constant, so no decay between the three calls
    assert (calls, answered, billsec) == (3, 2, 180)
    assert asr == Decimal("0.666667")
    assert acd == Decimal("90")
    # each sample is folded once
    assert scalar(pg, "SELECT count(*) FROM billing_private.gateway_samples") == 0
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 0
    assert one(pg, STATS, world.gateway.id)[:2] == (3, 2)
    # a later fold adds to the stored counters
    insert_cdr(pg, cdr_row(world, billsec=30))
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 1
    assert one(pg, STATS, world.gateway.id) == (4, 3, 210, Decimal("0.75"), Decimal("70"))
    assert scalar(pg, "SELECT billing_private.refresh_gateway_stats()") >= 1


def test_gateway_samples_skip_refused_calls_and_unknown_gateways(pg, world):
    insert_cdr(pg, cdr_row(None, billsec=0, billing_reject_reason="unknown_source"))
    insert_cdr(pg, cdr_row(world, billsec=0, billing_gateway="no_such_gateway"))
    assert scalar(pg, "SELECT count(*) FROM billing_private.gateway_samples") == 1   # the unknown name
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 0          # dropped by the fold
    assert scalar(pg, "SELECT count(*) FROM billing_private.gateway_samples") == 0


def test_unanswered_calls_only_leave_acd_unknown(pg, world):
    insert_cdr(pg, cdr_row(world, billsec=0))
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 1
    assert one(pg, STATS, world.gateway.id) == (1, 0, 0, Decimal("0"), None)


def test_refresh_drops_the_samples_it_counts(pg, world):
    insert_cdr(pg, cdr_row(world, billsec=60))
    assert scalar(pg, "SELECT billing_private.refresh_gateway_stats()") >= 1
    assert scalar(pg, "SELECT count(*) FROM billing_private.gateway_samples") == 0
    calls = one(pg, STATS, world.gateway.id)[0]
    assert scalar(pg, "SELECT billing_private.fold_gateway_stats()") == 0
    assert one(pg, STATS, world.gateway.id)[0] == calls    # not counted twice


def test_low_balance_event_once_per_crossing(pg, world):
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.customers SET low_balance_alert = 9.95 WHERE id = %s", (world.customer.id,))
    insert_cdr(pg, cdr_row(world, billsec=60))   # 10.00 -> 9.98: above
    assert scalar(pg, "SELECT count(*) FROM billing.balance_events") == 0
    insert_cdr(pg, cdr_row(world, billsec=120))  # 9.98 -> 9.94: crosses
    insert_cdr(pg, cdr_row(world, billsec=60))   # 9.94 -> 9.92: already below
    events = one(pg, "SELECT count(*), min(balance), min(threshold) FROM billing.balance_events "
                     "WHERE customer_id = %s AND kind = 'low_balance'", world.customer.id)
    assert events == (1, Decimal("9.940000"), Decimal("9.950000"))
    factories.topup(world.customer, "1.00")       # back above, then down again: a new crossing
    insert_cdr(pg, cdr_row(world, billsec=3600))  # 10.92 -> 9.72
    assert scalar(pg, "SELECT count(*) FROM billing.balance_events") == 2


def test_duplicate_uuid_is_accepted_and_bills_nothing(pg, world):
    row = cdr_row(world, billsec=61)
    assert insert_cdr(pg, row) == 1
    assert insert_cdr(pg, dict(row, billsec=600)) == 0   # no error, no row
    assert scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE uuid = %s", row["uuid"]) == 1
    assert scalar(pg, "SELECT count(*) FROM billing.cdr WHERE uuid = %s", row["uuid"]) == 1
    assert balance(pg, world.customer.id) == Decimal("9.960000")


def test_unexpected_error_keeps_the_row_unrated(pg, world):
    # The booking fails inside the trigger (here a table it writes is missing: an error
    # nobody expects, not a transient one): the row must still be stored, never lost,
    # never a failed INSERT. (An overflowing charge can no longer happen: a call is
    # charged for at most its hold, or max_call_seconds without one.)
    with pg.cursor() as cur:
        cur.execute("ALTER TABLE billing_private.gateway_samples RENAME TO gateway_samples_gone")
    row = cdr_row(world, billsec=61)
    assert insert_cdr(pg, row) == 1
    status, reason = one(pg, "SELECT status, unrated_reason FROM billing.fs_cdr WHERE uuid = %s", row["uuid"])
    assert status == "unrated" and reason.startswith("internal_error: 42P01")
    assert rated(pg, row["uuid"])["status"] == "unrated"
    assert balance(pg, world.customer.id) == Decimal("10")


def test_customer_and_date_queries_use_indexes(pg, world):
    now = datetime.now(timezone.utc)
    for i in range(3):
        insert_cdr(pg, cdr_row(world, billsec=i, start=now - timedelta(minutes=i)))
    month = now.strftime("%Y_%m")
    with pg.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN SELECT * FROM billing.cdr WHERE customer_id = %s AND start_stamp >= %s "
                    "AND start_stamp < %s", (world.customer.id, now - timedelta(hours=1), now + timedelta(hours=1)))
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "Seq Scan" not in plan and "Index" in plan, plan
    assert f"cdr_{month}" in plan and "cdr_default" not in plan, plan   # partition pruning


# ----------------------------------------------------------------- committed databases

def test_freeswitch_role_inserts_and_the_row_is_billed(fresh_db):
    admin = psycopg2.connect(fresh_db)
    ids = build_world_sql(admin)
    fs = psycopg2.connect(fresh_db.replace("postgres@", "billing_freeswitch@", 1))
    try:
        with fs.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "billing_freeswitch"
        row = ids_row(ids, billsec=61)
        assert insert_cdr(fs, row) == 1
        fs.commit()
        assert insert_cdr(fs, row) == 0    # duplicate: accepted, ignored
        fs.commit()
        with fs.cursor() as cur:           # the role still cannot read anything
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT * FROM billing.cdr")
        fs.rollback()
        assert rated(admin, row["uuid"])["sell_amount"] == Decimal("0.040000")
        assert balance(admin, ids.customer_id) == Decimal("9.960000")
    finally:
        fs.close()
        admin.close()


def test_concurrent_duplicate_delivery_does_not_fail(fresh_db):
    admin = psycopg2.connect(fresh_db)
    ids = build_world_sql(admin)
    first, second = psycopg2.connect(fresh_db), psycopg2.connect(fresh_db)
    try:
        row = ids_row(ids, billsec=61)
        assert insert_cdr(first, row) == 1            # not committed yet
        import threading
        result = {}

        def deliver_again():
            result["rows"] = insert_cdr(second, row)  # blocks on the uuid lock
            second.commit()

        t = threading.Thread(target=deliver_again)
        t.start()
        t.join(0.5)
        assert t.is_alive(), "the second delivery should wait for the first"
        first.commit()
        t.join(10)
        assert result["rows"] == 0
        assert scalar(admin, "SELECT count(*) FROM billing.ledger WHERE kind = 'call'") == 1
        assert balance(admin, ids.customer_id) == Decimal("9.960000")
    finally:
        first.close()
        second.close()
        admin.close()


def test_partition_created_over_rows_already_in_the_default_partition(pg, world):
    far = datetime(2031, 5, 17, 8, 0, tzinfo=timezone.utc)     # a switch with its clock far off
    row = cdr_row(world, billsec=60, start=far)
    insert_cdr(pg, row)
    assert scalar(pg, "SELECT tableoid::regclass::text FROM billing.cdr WHERE uuid = %s", row["uuid"]) == "billing.cdr_default"
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-05-01')") is True
    assert scalar(pg, "SELECT tableoid::regclass::text FROM billing.cdr WHERE uuid = %s", row["uuid"]) == "billing.cdr_2031_05"
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-05-01')") is False
    insert_cdr(pg, cdr_row(world, billsec=60, start=far))      # later rows of that month go there too
    assert scalar(pg, "SELECT count(*) FROM billing.cdr_2031_05") == 2
    assert scalar(pg, "SELECT billing_private.ensure_cdr_partitions(3)") == 0   # months around now exist


def test_refresh_gateway_stats_recomputes_from_recent_cdrs(pg, world):
    now = datetime.now(timezone.utc)
    for billsec in (60, 0, 0, 120):
        insert_cdr(pg, cdr_row(world, billsec=billsec, start=now - timedelta(minutes=3)))
    insert_cdr(pg, cdr_row(world, billsec=600, start=now - timedelta(days=3)))   # outside the 24 h window
    with pg.cursor() as cur:   # drift the running counters; refresh must repair them
        cur.execute("UPDATE billing.gateway_stats SET calls = 99, answered = 1, asr = 0.01 WHERE gateway_id = %s",
                    (world.gateway.id,))
    assert scalar(pg, "SELECT billing_private.refresh_gateway_stats()") >= 1
    calls, answered, asr, acd = one(pg, "SELECT calls, answered, asr, acd FROM billing.gateway_stats "
                                        "WHERE gateway_id = %s", world.gateway.id)
    # four calls a few minutes old: decayed by 2^(-age/1h), i.e. a little under 4
    assert Decimal("3.8") < calls <= 4 and Decimal("1.9") < answered <= 2
    # weights differ slightly (a call decays from its end), so about 1/2 and 90 s
    assert Decimal("0.49") < asr < Decimal("0.51") and Decimal("89") < acd < Decimal("91")


def test_hold_is_released_for_an_unrated_call_too(pg, world):
    row = cdr_row(world, billsec=61, billing_provider_id=None)
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, "
                    "max_duration, destination, expires_at) VALUES (%s, %s, %s, 1, 0.02, 3000, '33', now())",
                    (row["uuid"], world.customer.id, world.endpoint.id))
    insert_cdr(pg, row)
    assert rated(pg, row["uuid"])["unrated_reason"] == "missing_provider"
    assert scalar(pg, "SELECT count(*) FROM billing.call_holds") == 0


def test_balance_guard_refuses_updates_from_plpgsql_too(pg, world):
    # 0021 moved the guard's test into its WHEN clause (pg_trigger_depth() = 0): an UPDATE
    # issued by PL/pgSQL code that is not the ledger trigger is still refused; the CDR's
    # debit (through the ledger trigger) still passes.
    insert_cdr(pg, cdr_row(world, billsec=60))
    assert balance(pg, world.customer.id) == ledger_sum(pg, world.customer.id) == Decimal("9.980000")
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg2.errors.RestrictViolation, match="only through billing.ledger"):
            cur.execute("DO $$ BEGIN UPDATE billing.customers SET balance = balance + 1 WHERE id = %s; END $$"
                        % int(world.customer.id))
        cur.execute("ROLLBACK TO SAVEPOINT s")
    assert balance(pg, world.customer.id) == Decimal("9.980000")
