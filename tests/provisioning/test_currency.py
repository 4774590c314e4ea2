"""Currencies in the provisioning file: exchange rates (declarative, exact, upserted by
from / to / valid_from), and a customer's ratecards in the customer's currency."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import psycopg2
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ExchangeRate
from portal.provisioning import ProvisioningError, dump_text
from tests import factories


def rates():
    return [(x.from_currency, x.to_currency, x.rate, x.valid_from, x.valid_to)
            for x in db.session.scalars(select(ExchangeRate).order_by(ExchangeRate.from_currency, ExchangeRate.valid_from))]


def test_exchange_rates_are_loaded_exactly_and_upserted(db_session, load):
    summary = load("""
        exchange_rates:
          - {from: SEK, to: EUR, rate: 0.0871, valid_from: "2026-01-01 00:00:00+00:00", valid_to: "2026-02-01 00:00:00+00:00"}
          - {from: SEK, to: EUR, rate: "0.087123456789", valid_from: "2026-02-01 00:00:00+00:00"}
    """)
    assert "exchange rates: 2 created" in summary.lines()
    jan, feb = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert rates() == [("SEK", "EUR", Decimal("0.0871"), jan, feb), ("SEK", "EUR", Decimal("0.087123456789"), feb, None)]
    summary = load("""
        exchange_rates:
          - {from: SEK, to: EUR, rate: "0.0880", valid_from: "2026-02-01 00:00:00+00:00"}
    """)
    assert "exchange rates: 1 updated" in summary.lines()
    assert rates()[1][2] == Decimal("0.0880") and len(rates()) == 2   # the January row is kept
    assert "exchange rates: 1 unchanged" in load("""
        exchange_rates: [{from: SEK, to: EUR, rate: "0.088", valid_from: "2026-02-01 00:00:00+00:00"}]
    """).lines()
    assert "- {from: SEK, to: EUR, rate: '0.088', valid_from: 2026-02-01, valid_to: null}" in dump_text()


@pytest.mark.parametrize("item,error", [
    ("{from: SEK, to: SEK, rate: 1, valid_from: 2026-01-01}", "exchange_rates[0].to: must differ from `from`"),
    ("{from: SEK, to: EUR, rate: 0, valid_from: 2026-01-01}", "exchange_rates[0].rate: must be > 0"),
    ("{from: SEK, to: EUR, rate: 0.1234567890123, valid_from: 2026-01-01}",
     "exchange_rates[0].rate: more than 12 decimal places"),
    ("{from: sek, to: EUR, rate: 1, valid_from: 2026-01-01}",
     "exchange_rates[0].from: must be a 3-letter currency code in capitals, like EUR"),
    ("{from: SEK, to: EUR, rate: 1}", "exchange_rates[0].valid_from: required"),
    ("{from: SEK, to: EUR, rate: 1, valid_from: 2026-02-01, valid_to: 2026-01-01}",
     "exchange_rates[0].valid_to: must be after valid_from"),
])
def test_bad_exchange_rates_name_their_entry(db_session, load, item, error):
    with pytest.raises(ProvisioningError) as info:
        load(f"exchange_rates: [{item}]")
    assert error in info.value.errors
    assert rates() == []


def test_a_ratecard_in_another_currency_than_its_customer_is_refused(db_session, load):
    with pytest.raises(ProvisioningError) as info:
        load("""
            currency: EUR
            ratecards: [{name: usd_card, currency: USD}, {name: eur_card}]
            customers: [{name: acme, ratecards: [{name: eur_card}, {name: usd_card}]}]
        """)
    assert info.value.errors == ["customers[0].ratecards[1].name: ratecard 'usd_card' is in USD, the customer pays in "
                                 "EUR; a customer's ratecards must be in its currency"]
    load("""
        ratecards: [{name: usd_card, currency: USD}]
        customers: [{name: yankee, currency: USD, ratecards: [{name: usd_card}]}]
    """)
    with pytest.raises(ProvisioningError) as info:   # changing the currency of a customer with USD cards
        load("customers: [{name: yankee, currency: EUR}]")
    assert info.value.errors == ["customers[0].currency: EUR differs from its ratecard 'usd_card' (USD); "
                                 "a customer's ratecards must be in its currency"]
    # both at once, in one file: allowed
    load("""
        ratecards: [{name: eur_card, currency: EUR}]
        customers: [{name: yankee, currency: EUR, ratecards: [{name: eur_card}]}]
    """)


def test_the_database_refuses_a_ratecard_in_another_currency(pg, db_session):
    card = factories.ratecard(currency="USD")
    customer = factories.customer(currency="EUR")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.customer_ratecards VALUES (%s, %s, 1)", (customer.id, card.id))
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg2.errors.CheckViolation) as info:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")   # checked at commit; now, for the test
        assert info.value.diag.constraint_name == "ck_customer_ratecards_currency"
        assert "ratecard" in info.value.diag.message_primary and "in USD" in info.value.diag.message_primary
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        cur.execute("UPDATE billing.ratecards SET currency = 'EUR' WHERE id = %s", (card.id,))
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")   # the pair now agrees
        cur.execute("SAVEPOINT t")
        with pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute("UPDATE billing.customers SET currency = 'SEK' WHERE id = %s", (customer.id,))
        cur.execute("ROLLBACK TO SAVEPOINT t")
