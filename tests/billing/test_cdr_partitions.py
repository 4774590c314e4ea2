"""billing.cdr partitions leave room for one re-rate (0023): fillfactor 50, so a
re-rate that changes every call updates the rows in place (HOT, no index insertion)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from tests.billing.conftest import cdr_row, insert_cdr, scalar

FILLFACTOR = "SELECT reloptions::text FROM pg_class WHERE oid = %s::regclass"


def test_every_partition_has_fillfactor_50(pg):
    assert scalar(pg, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'billing.cdr'::regclass") >= 5
    assert scalar(pg, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                      "WHERE i.inhparent = 'billing.cdr'::regclass "
                      "AND NOT coalesce(c.reloptions, '{}') @> '{fillfactor=50}'") == 0


def test_new_partitions_get_fillfactor_50_or_the_setting(pg, world):
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-01-01')") is True
    assert scalar(pg, FILLFACTOR, "billing.cdr_2031_01") == "{fillfactor=50}"
    scalar(pg, "SELECT set_config('billing.cdr_fillfactor', '100', true)")
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-02-01')") is True
    assert scalar(pg, FILLFACTOR, "billing.cdr_2031_02") == "{fillfactor=100}"
    # the moving case (rows of that month already in the default partition) too
    scalar(pg, "SELECT set_config('billing.cdr_fillfactor', '', true)")
    insert_cdr(pg, cdr_row(world, billsec=60, start=datetime(2031, 3, 5, tzinfo=timezone.utc)))
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-03-01')") is True
    assert scalar(pg, FILLFACTOR, "billing.cdr_2031_03") == "{fillfactor=50}"
    assert scalar(pg, "SELECT count(*) FROM billing.cdr_2031_03") == 1


def test_fillfactor_setting_out_of_range_is_refused(pg):
    scalar(pg, "SELECT set_config('billing.cdr_fillfactor', '5', true)")
    with pytest.raises(psycopg2.errors.InvalidParameterValue):
        scalar(pg, "SELECT billing_private.create_cdr_partition('2031-04-01')")


def test_rerate_of_every_call_updates_in_place(pg, world):
    month = datetime(2031, 6, 1, tzinfo=timezone.utc)
    assert scalar(pg, "SELECT billing_private.create_cdr_partition('2031-06-01')") is True
    for i in range(80):   # several pages
        insert_cdr(pg, cdr_row(world, billsec=61 + i, start=month + timedelta(hours=i)))
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = rate + 0.0010 WHERE ratecard_id = %s", (world.ratecard.id,))
    assert scalar(pg, "SELECT row(r.*)::text FROM billing_private.rerate(%s, %s) r",
                  month, month + timedelta(days=30)) == "(80,1,0)"
    updated, hot = scalar(pg, "SELECT array[n_tup_upd, n_tup_hot_upd] FROM pg_stat_xact_user_tables "
                              "WHERE relid = 'billing.cdr_2031_06'::regclass")
    assert (updated, hot) == (80, 80)
