"""How route.lua tells an answered bridge from a failed one, in the real switch: in
1.10.12 originate_disposition ends as SUCCESS after an answered bridge. Tried with the
caller's leg hung up by FreeSWITCH (hangup_after_bridge, the default) and left up."""
from __future__ import annotations

import pytest

from tests.switch import harness

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]


@pytest.mark.parametrize("hangup_after_bridge", ["true", "false"])
def test_call_ended_by_the_callee_is_answered_once(tier, restore_switch_globals, hangup_after_bridge):
    restore_switch_globals("billing_hangup_after_bridge", hangup_after_bridge)
    last, offset = tier.last_cdr_id(), tier.switch.log_size()
    result = tier.call("3354123456", scenario="uac_expect_bye.xml", timeout=15)
    assert result.returncode == 0 and result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["billing_gateway"] == "gw_bye" and cdr["billing_route_seq"] == 1
    assert cdr["hangup_cause"] == "NORMAL_CLEARING" and cdr["billsec"] >= 1
    assert cdr["status"] == "rated"
    log = tier.switch.log_since(offset)
    assert "route 1 answered" in log
    assert "route 2" not in log and "caller hung up during route" not in log
