"""The customer rules (0024): domains and one trigger instead of table CHECKs, so that a
debit does not re-check them, with the same rules and the same constraint names."""
from __future__ import annotations

from decimal import Decimal

import psycopg2
import pytest

from tests.billing.conftest import balance, cdr_row, insert_cdr, ledger_sum

INSERT = ("INSERT INTO billing.customers (name, billing_type, credit_limit, max_calls, lcr_strategy, email, tax_rate) "
          "VALUES (%(name)s, %(billing_type)s, %(credit_limit)s, %(max_calls)s, %(lcr_strategy)s, %(email)s, %(tax_rate)s)")
GOOD = {"name": "acme_1", "billing_type": "postpaid", "credit_limit": "100", "max_calls": 5,
        "lcr_strategy": "cost", "email": "ops@acme.example", "tax_rate": "0.2"}


def refused(pg, sql, params) -> str:
    """The constraint named by the error the statement raises (check_violation)."""
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT t")
        with pytest.raises(psycopg2.errors.CheckViolation) as err:
            cur.execute(sql, params)
        cur.execute("ROLLBACK TO SAVEPOINT t")
    return err.value.diag.constraint_name


@pytest.mark.parametrize("column, value, constraint", [
    ("name", "bad name", "ck_customers_name"),
    ("name", "x" * 65, "ck_customers_name"),
    ("billing_type", "credit", "ck_customers_billing_type"),
    ("credit_limit", "-1", "ck_customers_credit_limit"),
    ("max_calls", -1, "ck_customers_max_calls"),
    ("lcr_strategy", "cheapest", "ck_customers_lcr_strategy"),
    ("email", "not an address", "ck_customers_email"),
    ("tax_rate", "1", "ck_customers_tax_rate"),
    ("tax_rate", "-0.1", "ck_customers_tax_rate"),
])
def test_each_rule_still_refuses_with_its_name(pg, column, value, constraint):
    assert refused(pg, INSERT, {**GOOD, column: value}) == constraint
    with pg.cursor() as cur:
        cur.execute(INSERT + " RETURNING id", GOOD)
        customer_id = cur.fetchone()[0]
    assert refused(pg, f"UPDATE billing.customers SET {column} = %(v)s WHERE id = %(id)s",
                   {"v": value, "id": customer_id}) == constraint


def test_edge_values_are_accepted(pg):
    with pg.cursor() as cur:
        cur.execute(INSERT, {**GOOD, "name": "x" * 64, "max_calls": 0, "credit_limit": "0", "tax_rate": "0.9999",
                             "email": None})
        cur.execute(INSERT, {**GOOD, "name": "acme_2", "max_calls": None, "tax_rate": None})
        assert cur.rowcount == 1


def test_prepaid_with_credit_is_refused_on_insert_and_on_update(pg):
    assert refused(pg, INSERT, {**GOOD, "billing_type": "prepaid"}) == "ck_customers_prepaid_no_credit"
    with pg.cursor() as cur:
        cur.execute(INSERT + " RETURNING id", {**GOOD, "billing_type": "prepaid", "credit_limit": "0"})
        customer_id = cur.fetchone()[0]
    assert refused(pg, "UPDATE billing.customers SET credit_limit = 5 WHERE id = %s",
                   (customer_id,)) == "ck_customers_prepaid_no_credit"
    with pg.cursor() as cur:
        cur.execute(INSERT + " RETURNING id", {**GOOD, "name": "acme_2"})
        postpaid_id = cur.fetchone()[0]
    assert refused(pg, "UPDATE billing.customers SET billing_type = 'prepaid' WHERE id = %s",
                   (postpaid_id,)) == "ck_customers_prepaid_no_credit"
    with pg.cursor() as cur:   # both at once is fine
        cur.execute("UPDATE billing.customers SET billing_type = 'prepaid', credit_limit = 0 WHERE id = %s",
                    (postpaid_id,))
        assert cur.rowcount == 1


def test_the_portal_message_for_prepaid_credit_is_kept(app, db_session):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from portal.admin.manage.services import explain

    with pytest.raises(IntegrityError) as err:
        with db_session.begin_nested():
            db_session.execute(text(INSERT.replace("%(", ":").replace(")s", "")), {**GOOD, "billing_type": "prepaid"})
    assert explain(err.value) == ("A prepaid customer cannot have a credit limit: "
                                  "make it postpaid or set the limit to 0.")


def test_month_spend_month_must_be_a_first_day(pg, world):
    assert refused(pg, "INSERT INTO billing.endpoint_month_spend (endpoint_id, month, amount) VALUES (%s, %s, 1)",
                   (world.endpoint.id, "2026-11-02")) == "ck_endpoint_month_spend_month"


def test_a_debit_still_books_with_the_rules_moved(pg, world):
    """The billing trigger's balance update runs with the rules as domains and trigger."""
    before = balance(pg, world.customer.id)
    insert_cdr(pg, cdr_row(world, billsec=60))
    after = balance(pg, world.customer.id)
    assert isinstance(after, Decimal) and after < before
    assert after == ledger_sum(pg, world.customer.id)
