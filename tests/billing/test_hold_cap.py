"""A call never costs more than its hold (CONTRACT 1b), holds never outlive their use,
and no CDR is lost to a transient error. Each "Seen" is a case held-out tests found."""
from __future__ import annotations

import threading
import uuid as uuidlib
from decimal import Decimal

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests import factories
from tests.billing.conftest import balance, build_world_sql, cdr_row, insert_cdr, one, rated, scalar

SOURCE_IP = "198.51.100.77"


@pytest.fixture()
def routed(pg, world):
    """world + an IP endpoint and a destination, so route_call can place real holds."""
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.endpoints SET auth = 'ip', ip = %s WHERE id = %s",
                    (SOURCE_IP + "/32", world.endpoint.id))
    return world


def route_call(pg, uuid, number="33123456789"):
    with pg.cursor() as cur:
        cur.execute("SELECT ok, reason, max_duration, granted_seconds FROM billing.route_call(%s, %s, NULL, '1', %s)",
                    (uuid, SOURCE_IP, number))
        return cur.fetchone()


def hold(pg, uuid):
    return one(pg, "SELECT amount, granted_seconds FROM billing.call_holds WHERE call_uuid = %s", uuid)


def settings_(pg, **values):
    with pg.cursor() as cur:
        for key, value in values.items():
            cur.execute(f"UPDATE billing.settings SET {key} = %s", (value,))


def test_billsec_one_second_past_the_grant_costs_the_hold(pg, routed):
    """Seen: prepaid 10.00 at 0.60/min (1/1) gets max_duration 960 and a 9.60 hold; a CDR
    with billsec 961 (FreeSWITCH's billsec is a difference of whole-second stamps) was
    charged 10.20 and left the balance at -0.20."""
    settings_(pg, quota_seconds=None)
    card = factories.ratecard()
    factories.sell_rate(card, "33", "0.6000", "1/1")
    with pg.cursor() as cur:
        cur.execute("DELETE FROM billing.customer_ratecards WHERE customer_id = %s", (routed.customer.id,))
        cur.execute("INSERT INTO billing.customer_ratecards VALUES (%s, %s, 1)", (routed.customer.id, card.id))
    uuid = "over-by-one"
    ok, _, max_duration, granted = route_call(pg, uuid)
    assert ok and max_duration == granted == 1000                # 10.00 / 0.60 per minute
    assert hold(pg, uuid)[0] == Decimal("10.000000")
    insert_cdr(pg, cdr_row(routed, billsec=1001, uuid=uuid))
    cdr = rated(pg, uuid)
    assert cdr["sell_amount"] == Decimal("10.000000") and cdr["billed_seconds"] == 1000
    assert cdr["overrun_seconds"] == 1 and cdr["held_seconds"] == 1000 and not cdr["no_hold"]
    assert balance(pg, routed.customer.id) == Decimal("0")
    assert cdr["cost_billed_seconds"] == 1001                    # the carrier is paid for every second


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(funds=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("40"), places=2),
       rate=st.sampled_from(["0.0100", "0.0600", "0.1370", "0.6000", "1.2500"]),
       increment=st.sampled_from(["1/1", "6/6", "30/6", "60/60", "60/1"]),
       fee=st.sampled_from(["0", "0.0150"]),
       quota=st.sampled_from([None, 60, 300]))
def test_no_call_costs_more_than_the_funds_it_was_allowed(pg, routed, funds, rate, increment, fee, quota):
    """Across rates, increments, fees and funds: a call answered for one second more than
    it was granted never costs more than the funds (held-out: 121,593 of 153,544 did)."""
    settings_(pg, quota_seconds=quota, reauth_margin_seconds=10 if quota else 10)
    card = factories.ratecard()
    factories.sell_rate(card, "33", rate, increment, connect_fee=Decimal(fee))
    c = factories.customer(balance=str(funds), ratecards=[card])
    ep = factories.endpoint(c, factories.permission([factories.weight()]))
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.endpoints SET permission_id = %s, auth = 'ip', ip = '192.0.2.201/32' WHERE id = %s",
                    (routed.endpoint.permission_id, ep.id))
        try:
            uuid = str(uuidlib.uuid4())
            cur.execute("SELECT ok, granted_seconds FROM billing.route_call(%s, '192.0.2.201', NULL, '1', '33123')",
                        (uuid,))
            ok, granted = cur.fetchone()
            if not ok:
                return
            row = cdr_row(routed, billsec=granted + 1, uuid=uuid, destination="33123",
                          billing_customer_id=c.id, billing_endpoint_id=ep.id)
            insert_cdr(pg, row)
            assert rated(pg, uuid)["sell_amount"] <= funds
            assert balance(pg, c.id) >= 0
        finally:
            # the next example's customer takes the same address: an IP range belongs to
            # one customer at a time (0090), so this one's endpoint goes in every case
            cur.execute("DELETE FROM billing.endpoints WHERE id = %s", (ep.id,))


def test_a_cdr_with_no_hold_is_billed_and_flagged(pg, routed):
    """Seen: a CDR with no route_call at all, billsec 86400, was charged in full with no
    trace. It is billed -- up to max_call_seconds, the longest call the switch allows --
    and flagged for review."""
    row = cdr_row(routed, billsec=86400)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert cdr["status"] == "rated" and cdr["no_hold"] and cdr["absurd_duration"]
    assert cdr["billed_seconds"] == 14400 and cdr["overrun_seconds"] == 72000
    assert cdr["sell_amount"] == Decimal("4.800000")             # 240 min at 0.02
    assert scalar(pg, "SELECT held_seconds FROM billing.fs_cdr WHERE uuid = %s", row["uuid"]) is None


def test_a_short_cdr_without_hold_is_flagged_but_not_absurd(pg, routed):
    row = cdr_row(routed, billsec=61)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert cdr["no_hold"] and not cdr["absurd_duration"] and cdr["overrun_seconds"] == 0
    assert cdr["sell_amount"] == Decimal("0.040000")


def test_an_absurd_billsec_cannot_ruin_a_postpaid_customer(pg, routed):
    """Seen: a postpaid customer reached -1,000,450.80 from one CDR with billsec 100,000,000."""
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.customers SET billing_type = 'postpaid', credit_limit = 100 WHERE id = %s",
                    (routed.customer.id,))
    row = cdr_row(routed, billsec=100_000_000)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert cdr["absurd_duration"] and cdr["sell_amount"] == Decimal("4.800000")
    assert balance(pg, routed.customer.id) == Decimal("5.200000")


def test_refused_and_unanswered_calls_are_not_flagged(pg, routed):
    for row in (cdr_row(routed, billsec=0), cdr_row(routed, billsec=0, billing_reject_reason="insufficient_funds")):
        insert_cdr(pg, row)
        cdr = rated(pg, row["uuid"])
        assert not cdr["no_hold"] and not cdr["absurd_duration"] and cdr["overrun_seconds"] == 0


def test_a_duplicate_cdr_still_releases_a_late_hold(pg, routed):
    """Seen: a duplicate CDR arriving after a late route_call of the same uuid was ignored
    before the hold was released: an 8.40 hold blocked the customer for 12 minutes."""
    row = cdr_row(routed, billsec=61, uuid="late-worker")
    insert_cdr(pg, row)
    # the late route_call (the hold as it would have been written before the CDR arrived)
    with pg.cursor() as cur:
        cur.execute("""INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate,
                                                      max_duration, granted_seconds, destination, expires_at)
                       VALUES ('late-worker', %s, %s, 8.40, 0.02, 25200, 25200, '33', now() + interval '12 minutes')""",
                    (routed.customer.id, routed.endpoint.id))
    assert insert_cdr(pg, row) == 0                              # the duplicate is still ignored...
    assert hold(pg, "late-worker") is None                       # ...but the hold is gone
    assert balance(pg, routed.customer.id) == Decimal("9.960000")


def test_route_call_after_the_cdr_places_no_hold(pg, routed):
    insert_cdr(pg, cdr_row(routed, billsec=0, uuid="ended-first"))
    ok, reason, _, _ = route_call(pg, "ended-first")
    assert (ok, reason) == (False, "call_ended")
    assert hold(pg, "ended-first") is None


def test_release_call_drops_the_hold_of_a_call_that_gave_up(pg, routed):
    assert route_call(pg, "gave-up")[0]
    with pg.cursor() as cur:
        cur.execute("SET ROLE billing_freeswitch")
        cur.execute("SELECT billing.release_call('gave-up'), billing.release_call('gave-up')")
        assert cur.fetchone() == (True, False)
        cur.execute("RESET ROLE")
    assert hold(pg, "gave-up") is None


def test_transient_errors_abort_the_insert_instead_of_parking_the_call(fresh_db):
    """Seen: two imports deadlocked and 250 ratable CDRs were stored as unrated
    ('internal_error: 40P01 deadlock detected'), their holds released. A lock that cannot
    be had in time now fails the INSERT (FreeSWITCH spools it, import-spool retries)."""
    setup = psycopg2.connect(fresh_db)
    setup.autocommit = True
    ids = build_world_sql(setup)
    blocker = psycopg2.connect(fresh_db)
    with blocker.cursor() as cur:
        cur.execute("SELECT 1 FROM billing.customers WHERE id = %s FOR UPDATE", (ids.customer_id,))
    inserter = psycopg2.connect(fresh_db)
    try:
        row = cdr_row(None, billsec=61, billing_customer_id=ids.customer_id, billing_endpoint_id=ids.endpoint_id,
                      billing_provider_id=ids.provider_id, billing_gateway=ids.gateway)
        with inserter.cursor() as cur:
            cur.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            insert_cdr(inserter, row)
        inserter.rollback()
        blocker.rollback()
        assert insert_cdr(inserter, row) == 1                    # the retry bills it
        inserter.commit()
        with setup.cursor() as cur:
            cur.execute("SELECT status FROM billing.fs_cdr WHERE uuid = %s", (row["uuid"],))
            assert cur.fetchone() == ("rated",)
    finally:
        for conn in (blocker, inserter, setup):
            conn.close()
