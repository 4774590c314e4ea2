"""Re-rating finds rates set-based (hash joins); the trigger uses find_sell_rate /
find_provider_rate (the functions route_call uses). Both must pick the same rates and
give the same amounts and reasons on any data: a re-rate right after the trigger must
change nothing."""
from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.billing.conftest import T0, cdr_row, insert_cdr, scalar

SNAPSHOT = ("SELECT uuid, status, unrated_reason, sell_rate_id, cost_rate_id, sell_amount, cost_amount, "
            "billed_seconds, cost_billed_seconds, customer_id, provider_id, cost_currency, cost_amount_original, "
            "exchange_rate FROM billing.cdr ORDER BY uuid")


def _snapshot(pg):
    with pg.cursor() as cur:
        cur.execute(SNAPSHOT)
        return cur.fetchall()


@pytest.mark.parametrize("seed,hash_joins", [(1, False), (2, False), (3, True), (4, True)])
def test_rerate_agrees_with_the_trigger(pg, seed, hash_joins):
    rng = random.Random(seed)
    if hash_joins:   # the plan used for large re-rates, forced on this small one
        scalar(pg, "SELECT set_config('billing.rerate_hash_threshold', '0', true)")
    digits = "3345"

    def prefix():
        return "".join(rng.choice(digits) for _ in range(rng.randint(1, 4)))

    def window():
        kind = rng.random()
        if kind < 0.6:
            return {}
        start = T0 + timedelta(hours=rng.randint(-48, 48))
        return {"valid_from": start} if kind < 0.8 else {"valid_from": start, "valid_to": start + timedelta(hours=rng.randint(1, 72))}

    def add_rates(make):
        # Some prefixes get a second, overlapping rate (distinct valid_from: unique per
        # card/provider and prefix): both lookups break the tie by the latest
        # valid_from, then the highest id (docs/billing.md, "Overlapping rates").
        for p in dict.fromkeys(prefix() for _ in range(25)):   # ordered: reproducible data
            first = window()
            make(p, first)
            if rng.random() < 0.3:
                second = {"valid_from": T0 + timedelta(hours=rng.randint(-60, 60), minutes=1)}
                if rng.random() < 0.5:
                    second["valid_to"] = second["valid_from"] + timedelta(hours=rng.randint(1, 72))
                make(p, second)

    cards = [factories.ratecard() for _ in range(3)]
    for card in cards:
        add_rates(lambda p, w: factories.sell_rate(
            card, p, str(Decimal(rng.randint(1, 2000)) / 10000), rng.choice(["60/60", "30/6", "1/1"]),
            blocked=rng.random() < 0.1, min_duration=rng.choice([0, 0, 30]),
            connect_fee=Decimal(rng.choice(["0", "0", "0.01"])), **w))
    customers = [factories.customer(balance="100", ratecards=rng.sample(cards, rng.randint(1, 3))) for _ in range(3)]
    # the third provider bills in SEK: its calls need a SEK -> EUR rate valid at their
    # start (some windows leave gaps: no_exchange_rate), the latest valid_from winning
    providers = [factories.provider() for _ in range(2)] + [factories.provider(currency="SEK")]
    for hours in sorted(rng.sample(range(-60, 96), 6)):   # calls start from -72 h: some before any rate
        start = T0 + timedelta(hours=hours)
        factories.exchange_rate("SEK", "EUR", str(Decimal(rng.randint(800, 1200)) / 10000), start,
                                start + timedelta(hours=rng.randint(1, 60)) if rng.random() < 0.5 else None)
    for prov in providers:
        add_rates(lambda p, w: factories.provider_rate(
            prov, p, str(Decimal(rng.randint(1, 1000)) / 10000), rng.choice(["1/1", "60/60"]),
            blocked=rng.random() < 0.1, **w))
    for _ in range(150):
        number = "".join(rng.choice(digits) for _ in range(rng.randint(1, 9)))
        insert_cdr(pg, cdr_row(None, billsec=rng.choice([0, 1, 29, 61, 125]), destination=number,
                               start=T0 + timedelta(hours=rng.randint(-72, 72)),
                               billing_customer_id=rng.choice(customers).id,
                               billing_provider_id=rng.choice(providers).id))
    before = _snapshot(pg)
    rated = sum(1 for row in before if row[1] == "rated")
    assert 20 < rated < 150, "the random data should mix rated and unrated calls"
    reasons = {row[2] for row in before}
    converted = sum(1 for row in before if row[11] == "SEK")
    assert "no_exchange_rate" in reasons and converted > 3, "the random data should mix converted and missing rates"
    ledger_rows = scalar(pg, "SELECT count(*) FROM billing.ledger")
    result = scalar(pg, "SELECT row(r.*)::text FROM billing_private.rerate(%s, %s) r",
                    T0 - timedelta(days=5), T0 + timedelta(days=5))
    assert _snapshot(pg) == before
    assert scalar(pg, "SELECT current_setting('enable_indexscan')") == "on"   # planner settings restored
    assert scalar(pg, "SELECT count(*) FROM billing.ledger") == ledger_rows, result
