"""The database away from the switch, in the real FreeSWITCH: call set-up fails closed
with 503 within the documented bound, recovers on the next call, and CDRs written
meanwhile are spooled and billed once by `billing import-spool`."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.switch import harness
from tests.switch.conftest import flask

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]

# billing_route_timeout_ms (2000) plus the switch's own work: docs/freeswitch.md.
SET_UP_BOUND = 2.6


def refused(tier, number="33123456789"):
    return tier.call(number, scenario="uac_refused.xml", timeout=15)


def test_fail_closed_answers_503_and_the_cdr_says_why(tier):
    """Billing cannot decide (here: the switch's role lost a grant, as when `db upgrade`
    was not run): 503 with Retry-After, never 480, and the CDR carries a cause
    FreeSWITCH knows."""
    grant = "EXECUTE ON FUNCTION billing.route_options(bigint, text)"
    tier.sql(f"REVOKE {grant} FROM billing_freeswitch", fetch=False)
    last, offset = tier.last_cdr_id(), tier.switch.log_size()
    try:
        result = refused(tier)
    finally:
        tier.sql(f"GRANT {grant} TO billing_freeswitch", fetch=False)
    assert result.final == 503 and result.header("Retry-After") == ["10"]
    assert "FAIL CLOSED" in tier.switch.log_since(offset) and "permission denied" in tier.switch.log_since(offset)
    cdr = tier.cdr(since_id=last)
    assert cdr["hangup_cause"] == "NORMAL_TEMPORARY_FAILURE"
    assert cdr["billing_reject_reason"] == "billing_unavailable"
    assert cdr["sip_hangup_disposition"] == "send_refuse"


def test_database_gone_fails_closed_in_time_and_recovers_on_the_next_call(tier, database_back):
    assert tier.call("33123456789").final == 200          # a pooled connection exists now
    offset = tier.switch.log_size()
    database_back.cut()
    for _ in range(2):
        result = refused(tier)
        assert result.final == 503 and result.header("Retry-After") == ["10"]
        assert result.seconds < SET_UP_BOUND, result.seconds
    assert "FAIL CLOSED" in tier.switch.log_since(offset)
    database_back.restore()
    result = tier.call("33123456789")
    assert result.final == 200
    assert_no_hold_left_behind(tier)


def assert_no_hold_left_behind(tier):
    """The worker stuck on the dead connection finishes once the database is back: it
    must not leave a hold behind for a call that is long gone. (mod_cdr_pg_csv spools the
    first CDR after an outage -- its connection is stale -- so the spool is imported, as
    docs/freeswitch.md tells operators to.)"""
    def settled():
        tier.import_spool()
        return tier.holds("acme") == 0
    try:
        harness.wait_for(settled, 20, step=0.5, what="no hold left by refused calls")
    except TimeoutError:
        left = tier.sql("SELECT call_uuid, created_at, granted_seconds FROM billing.call_holds")
        raise AssertionError(f"holds left behind: {left}") from None


def test_restarted_database_is_used_at_once(tier, database_back):
    """Every pooled connection dies at once (a restart): the next call still goes through."""
    assert tier.call("33123456789").final == 200
    database_back.cut()
    database_back.restore()
    result = tier.call("33123456789")
    assert result.final == 200 and result.seconds < SET_UP_BOUND


def test_database_that_stops_answering_fails_closed_in_time(tier, database_back):
    database_back.blackhole()
    result = refused(tier)
    assert result.final == 503 and result.seconds < SET_UP_BOUND, result.seconds
    database_back.restore()
    assert tier.call("33123456789").final == 200
    assert_no_hold_left_behind(tier)


def test_cdr_of_a_call_ending_while_the_database_is_down_is_spooled_then_billed_once(tier, database_back):
    tier.import_spool()
    last = tier.last_cdr_id()
    before = tier.balance("acme")
    assert tier.holds("acme") == 0
    call = tier.call("33123456789", talk_ms=2500, background=True)
    harness.wait_for(lambda: tier.holds("acme") == 1, 10, what="the call's hold")
    time.sleep(0.5)
    database_back.cut()
    assert tier.sipp.uac_result(call).final == 200
    spool = tier.switch.spool_dir / "cdr-spool.sql"
    harness.wait_for(lambda: spool.exists() and spool.stat().st_size > 0, 10, what="the spooled CDR")
    database_back.restore()
    assert tier.last_cdr_id() == last
    assert "1 line(s): 1 inserted" in tier.import_spool()
    again = flask(tier.database_url, "billing", "import-spool", "--from-start", str(spool)).stdout
    assert " 0 inserted" in again and " 0 error(s)" in again     # everything again: nothing billed twice
    rows = tier.sql("SELECT uuid, billsec, status FROM billing.fs_cdr WHERE id > %s", (last,))
    assert len(rows) == 1 and rows[0][2] == "rated" and rows[0][1] >= 2
    charged = tier.one("SELECT sell_amount FROM billing.cdr WHERE uuid = %s", (rows[0][0],))[0]
    assert charged == Decimal(rows[0][1]) / 100
    assert tier.balance("acme") == before - charged
    assert tier.holds("acme") == 0
