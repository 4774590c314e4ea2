"""billing_private.rerate_preview: what a re-rate would move per customer, booking
nothing; the same figures the re-rate then books."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests import factories
from tests.billing.conftest import T0, cdr_row, insert_cdr, ledger_sum, scalar


def _preview(pg, **kw):
    with pg.cursor() as cur:
        cur.execute("SELECT customer_id, calls, changed, sell_before, sell_after, cost_before, cost_after "
                    "FROM billing_private.rerate_preview(%s, %s, %s, %s)",
                    (T0 - timedelta(hours=1), T0 + timedelta(hours=2), kw.get("customer"), kw.get("provider")))
        return {r[0]: r[1:] for r in cur.fetchall()}


def test_a_call_moved_to_another_customer_counts_for_both(world, pg, db_session):
    other = factories.customer(balance="5", ratecards=[world.ratecard])
    row = cdr_row(world, billsec=61)
    insert_cdr(pg, row)
    with pg.cursor() as cur:   # the raw CDR named the wrong customer: fixed, then re-rated
        cur.execute("UPDATE billing.fs_cdr SET billing_customer_id = %s WHERE uuid = %s", (other.id, row["uuid"]))
    preview = _preview(pg)
    assert preview[world.customer.id] == (1, 1, Decimal("0.040000"), Decimal("0"), Decimal("0.005083"), Decimal("0"))
    assert preview[other.id] == (1, 1, Decimal("0"), Decimal("0.040000"), Decimal("0"), Decimal("0.005083"))
    assert scalar(pg, "SELECT count(*) FROM billing.ledger WHERE kind = 'rerate'") == 0   # nothing booked
    scalar(pg, "SELECT rerated FROM billing_private.rerate(%s, %s)", T0 - timedelta(hours=1), T0 + timedelta(hours=2))
    assert ledger_sum(pg, world.customer.id) == Decimal("10.00")               # refunded
    assert ledger_sum(pg, other.id) == Decimal("5") - Decimal("0.04")          # charged


def test_unchanged_calls_are_counted_but_not_changing(world, pg):
    insert_cdr(pg, cdr_row(world, billsec=61))
    insert_cdr(pg, cdr_row(world, billsec=0, start=T0 + timedelta(minutes=5)))
    assert _preview(pg)[world.customer.id] == (2, 0, Decimal("0.040000"), Decimal("0.040000"),
                                               Decimal("0.005083"), Decimal("0.005083"))
    assert _preview(pg, provider=world.provider.id + 999) == {}
