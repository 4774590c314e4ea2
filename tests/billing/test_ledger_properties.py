"""Property: whatever happens (payments, calls, duplicates, unrated calls, re-rates),
a balance equals the sum of its ledger, and call charges in the ledger equal the
rated CDRs."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.ledger.services import post_entry
from tests.billing.conftest import T0, cdr_row, insert_cdr, scalar

amounts = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("500"), places=6)
operations = st.lists(st.one_of(
    st.tuples(st.sampled_from(["topup", "payment", "credit_note"]), amounts),
    st.tuples(st.just("adjustment"), amounts, st.booleans()),
    st.tuples(st.just("call"), st.integers(0, 7200), st.sampled_from(["33123", "33612", "4912"])),
    st.tuples(st.just("duplicate")),
    st.tuples(st.just("reprice"), st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4)),
    st.tuples(st.just("rerate")),
), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_balance_is_always_the_sum_of_the_ledger(pg, world, ops):
    cid = world.customer.id
    last = None
    for i, op in enumerate(ops):
        kind = op[0]
        if kind in ("topup", "payment", "credit_note"):
            post_entry(cid, kind, op[1])
        elif kind == "adjustment":
            post_entry(cid, "adjustment", op[1] if op[2] else -op[1])
        elif kind == "call":
            last = cdr_row(world, billsec=op[1], destination=op[2], start=T0 + timedelta(seconds=i))
            insert_cdr(pg, last)
        elif kind == "duplicate" and last is not None:
            assert insert_cdr(pg, dict(last, uuid=last["uuid"], billsec=999)) == 0
        elif kind == "reprice":
            with pg.cursor() as cur:
                cur.execute("UPDATE billing.rates SET rate = %s WHERE ratecard_id = %s AND prefix = '33'",
                            (op[1], world.ratecard.id))
        elif kind == "rerate":
            scalar(pg, "SELECT rerated FROM billing_private.rerate(%s, %s, %s)",
                   T0 - timedelta(days=1), T0 + timedelta(days=1), cid)

        assert scalar(pg, "SELECT balance FROM billing.customers WHERE id = %s", cid) == \
            scalar(pg, "SELECT sum(amount) FROM billing.ledger WHERE customer_id = %s", cid)
        charged = scalar(pg, "SELECT coalesce(-sum(amount), 0) FROM billing.ledger "
                             "WHERE customer_id = %s AND kind IN ('call', 'rerate')", cid)
        rated = scalar(pg, "SELECT coalesce(sum(sell_amount), 0) FROM billing.cdr "
                           "WHERE customer_id = %s AND status = 'rated'", cid)
        assert charged == rated
    # unique raw CDRs: one rated row per uuid
    assert scalar(pg, "SELECT count(*) FROM (SELECT uuid FROM billing.cdr GROUP BY uuid HAVING count(*) > 1) d") == 0

