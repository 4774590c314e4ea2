"""Which rate a CDR is rated with when several could apply: overlapping validity
windows of one prefix (latest valid_from wins, then the highest id: the same rule in
the trigger's find_sell_rate / find_provider_rate and in the set-based re-rate), and
numbers longer than the longest prefix in use (the trigger probes only prefixes up to
billing_private.prefix_lengths.longest)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests import factories
from tests.billing.conftest import T0, cdr_row, insert_cdr, rated, scalar

SNAPSHOT = ("SELECT uuid, status, sell_rate_id, cost_rate_id, sell_amount, cost_amount FROM billing.cdr "
            "ORDER BY uuid")


def _snapshot(pg):
    with pg.cursor() as cur:
        cur.execute(SNAPSHOT)
        return cur.fetchall()


def _overlapping_rates(world):
    """Four open-ended rates of prefix 44 in the customer's card and at the carrier,
    entered in an order unrelated to their valid_from (ids: a < b < c < d)."""
    day = timedelta(days=1)
    sell = {
        "a": factories.sell_rate(world.ratecard, "44", "0.0300", "60/60", valid_from=T0 - 2 * day),
        "b": factories.sell_rate(world.ratecard, "44", "0.0100", "60/60"),                     # since always
        "c": factories.sell_rate(world.ratecard, "44", "0.0500", "60/60", valid_from=T0 - day),
        "d": factories.sell_rate(world.ratecard, "44", "0.0700", "60/60", valid_from=T0 - 3 * day),
    }
    cost = {
        "a": factories.provider_rate(world.provider, "44", "0.0030", "1/1", valid_from=T0 - 2 * day),
        "b": factories.provider_rate(world.provider, "44", "0.0010", "1/1"),
        "c": factories.provider_rate(world.provider, "44", "0.0060", "1/1", valid_from=T0 - day),
        "d": factories.provider_rate(world.provider, "44", "0.0090", "1/1", valid_from=T0 - 3 * day),
    }
    return sell, cost


def test_overlapping_rates_latest_valid_from_wins_in_the_trigger_and_in_rerate(pg, world):
    sell, cost = _overlapping_rates(world)
    # at T0 all four are valid: c has the latest valid_from
    now = cdr_row(world, billsec=60, destination="4420123", start=T0)
    # 36 hours earlier c is not valid yet: a (T0 - 2 days) is the latest of a, b, d
    earlier = cdr_row(world, billsec=60, destination="4420123", start=T0 - timedelta(hours=36))
    # before every dated rate only b (valid_from NULL, open since always) applies
    oldest = cdr_row(world, billsec=60, destination="4420123", start=T0 - timedelta(days=4))
    for row in (now, earlier, oldest):
        assert insert_cdr(pg, row) == 1
    expected = {
        now["uuid"]: (sell["c"].id, Decimal("0.050000"), cost["c"].id, Decimal("0.006000")),
        earlier["uuid"]: (sell["a"].id, Decimal("0.030000"), cost["a"].id, Decimal("0.003000")),
        oldest["uuid"]: (sell["b"].id, Decimal("0.010000"), cost["b"].id, Decimal("0.001000")),
    }
    for uuid, (sell_id, sell_amount, cost_id, cost_amount) in expected.items():
        cdr = rated(pg, uuid)
        assert (cdr["sell_rate_id"], cdr["sell_amount"], cdr["cost_rate_id"], cdr["cost_amount"]) == (
            sell_id, sell_amount, cost_id, cost_amount)
    assert scalar(pg, "SELECT balance FROM billing.customers WHERE id = %s", world.customer.id) == Decimal("9.910000")

    # The set-based re-rate picks the same rates: nothing to correct, both plans.
    before = _snapshot(pg)
    ledger_rows = scalar(pg, "SELECT count(*) FROM billing.ledger")
    for threshold in ("1000000", "0"):   # index probes, then the hash joins of large re-rates
        scalar(pg, "SELECT set_config('billing.rerate_hash_threshold', %s, true)", threshold)
        result = scalar(pg, "SELECT row(r.*)::text FROM billing_private.rerate(%s, %s) r",
                        T0 - timedelta(days=5), T0 + timedelta(days=1))
        assert result == "(3,0,0)"
        assert _snapshot(pg) == before
    assert scalar(pg, "SELECT count(*) FROM billing.ledger") == ledger_rows


def test_rerate_of_a_raw_cdr_uses_the_same_tie_break(pg, world):
    """A raw CDR stored without the trigger (bulk import) and re-rated: the set-based
    lookup alone decides, and it must pick what the trigger would have picked."""
    sell, cost = _overlapping_rates(world)
    row = cdr_row(world, billsec=60, destination="4420123", start=T0)
    with pg.cursor() as cur:
        cur.execute("ALTER TABLE billing.fs_cdr DISABLE TRIGGER tg_fs_cdr__bill")
        insert_cdr(pg, row)
        cur.execute("ALTER TABLE billing.fs_cdr ENABLE TRIGGER tg_fs_cdr__bill")
    fs_cdr_id = scalar(pg, "SELECT id FROM billing.fs_cdr WHERE uuid = %s", row["uuid"])
    assert scalar(pg, "SELECT billing_private.rerate_fs_cdr(%s)", fs_cdr_id) == "rated"
    cdr = rated(pg, row["uuid"])
    assert (cdr["sell_rate_id"], cdr["sell_amount"], cdr["cost_rate_id"], cdr["cost_amount"]) == (
        sell["c"].id, Decimal("0.050000"), cost["c"].id, Decimal("0.006000"))


def test_number_longer_than_the_longest_prefix_in_use(pg, world):
    factories.sell_rate(world.ratecard, "33612", "0.1200", "60/60")
    factories.provider_rate(world.provider, "33612", "0.0600", "1/1")
    longest = scalar(pg, "SELECT longest FROM billing_private.prefix_lengths")
    assert 5 <= longest < 19
    number = "33612" + "7" * 15          # 20 digits, the longest valid number
    row = cdr_row(world, billsec=61, destination=number)
    assert insert_cdr(pg, row) == 1
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["sell_prefix"], cdr["destination"]) == ("rated", "33612", number)
    assert (cdr["sell_amount"], cdr["cost_amount"]) == (Decimal("0.240000"), Decimal("0.061000"))

    # A prefix longer than every one before raises the bound (statement trigger of
    # 0014) and the very next CDR finds it, in the same transaction.
    longer = number[:longest + 1]
    new_sell = factories.sell_rate(world.ratecard, longer, "0.3000", "1/1")
    new_cost = factories.provider_rate(world.provider, longer, "0.1500", "1/1")
    assert scalar(pg, "SELECT longest FROM billing_private.prefix_lengths") == longest + 1
    row = cdr_row(world, billsec=61, destination=number)
    assert insert_cdr(pg, row) == 1
    cdr = rated(pg, row["uuid"])
    assert (cdr["sell_rate_id"], cdr["cost_rate_id"], cdr["sell_prefix"]) == (new_sell.id, new_cost.id, longer)
    assert (cdr["sell_amount"], cdr["cost_amount"]) == (Decimal("0.305000"), Decimal("0.152500"))
