"""Credit in quotas through the real switch (CONTRACT 1b): the call holds one quota at a
time, route.lua's api_on_answer schedules billing/reauth.lua before each grant runs out,
and the switch cuts the call exactly at the end of its last grant."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.switch import harness
from tests.switch.conftest import QUOTA_IP, TOPUP_IP

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]


@pytest.fixture()
def short_quotas(tier):
    """Quotas of 4 s, asked for 2 s before they run out (the tests stay short)."""
    before = tier.one("SELECT quota_seconds, reauth_margin_seconds FROM billing.settings")
    tier.sql("UPDATE billing.settings SET reauth_margin_seconds = 2, quota_seconds = 4", fetch=False)
    yield
    tier.sql("UPDATE billing.settings SET quota_seconds = %s, reauth_margin_seconds = %s", before, fetch=False)


def test_funds_for_two_and_a_half_quotas_are_re_authorized_twice_and_cut_at_the_second(tier, short_quotas):
    """0.10 at 0.60/min (1/1): 10 s of credit -- granted 4 s at set-up, 8 s and 10 s
    (final) by re-authorization, cut at 10 s with ALLOTTED_TIMEOUT."""
    last, offset = tier.last_cdr_id(), tier.switch.log_size()
    result = tier.call("33123456789", source_ip=QUOTA_IP, scenario="uac_expect_bye.xml", timeout=30)
    assert result.returncode == 0 and result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["hangup_cause"] == "ALLOTTED_TIMEOUT"
    assert cdr["billsec"] == 10 and 9000 < cdr["billmsec"] <= 10200
    log = tier.switch.log_since(offset)
    assert "credit granted up to 8 s" in log and "credit granted up to 10 s, the last grant" in log
    rated = tier.one("SELECT sell_amount, held_seconds, overrun_seconds FROM billing.cdr WHERE uuid = %s",
                     (cdr["uuid"],))
    assert rated == (Decimal("0.100000"), 10, 0)
    assert tier.balance("quota") == Decimal("0")
    tier.wait_no_holds("quota")


def test_a_customer_topped_up_during_the_call_keeps_talking(tier, short_quotas):
    """0.06: 6 s of credit. Topped up half a second into the call, the
    re-authorizations keep granting and the caller hangs up after 12 s."""
    last = tier.last_cdr_id()
    call = tier.call("33123456789", source_ip=TOPUP_IP, talk_ms=12000, background=True, timeout=40)
    harness.wait_for(lambda: tier.holds("topup") == 1, 10, what="the call's hold")
    time.sleep(0.5)                                          # answered: the carrier answers at once
    # a payment booked through the ledger, as the portal and `billing topup` do
    tier.sql("""INSERT INTO billing.ledger (customer_id, kind, amount, note)
                SELECT id, 'topup', 1.00, 'during the call' FROM billing.customers WHERE name = 'topup'""",
             fetch=False)
    result = tier.sipp.uac_result(call, timeout=40)
    assert result.returncode == 0 and result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["hangup_cause"] == "NORMAL_CLEARING" and cdr["billsec"] >= 11
    assert tier.one("SELECT overrun_seconds FROM billing.cdr WHERE uuid = %s", (cdr["uuid"],)) == (0,)
    tier.wait_no_holds("topup")
