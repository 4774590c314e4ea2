"""Calls through the real FreeSWITCH 1.10.12 with the shipped configuration: routed,
billed, refused with the documented SIP codes, failed over, limited, cut."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from tests.switch import harness
from tests.switch.conftest import (ACME_IP, BROKE_IP, BUSY_IP, CLOSED_IP, GONE_IP, SIP_DOMAIN, SIP_PASSWORD,
                                   SIP_USER, THRIFTY_IP, TIMED_IP, flask)

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]


def test_the_shipped_configuration_starts(tier):
    """FreeSWITCH started with freeswitch/conf as freeswitch/configure installs it: both
    profiles, the gateways and the ACL from the database, and no error at start-up."""
    gateways = tier.switch.api("sofia status gateway")
    for name in ("gw_a", "gw_b", "gw_503", "gw_486", "gw_480", "gw_one", "gw_bye", "gw_dear"):
        assert f"carriers::{name}" in gateways
    assert tier.switch.api(f"acl {ACME_IP} billing_customers").strip() == "true"
    assert tier.switch.api("acl 127.0.0.99 billing_customers").strip() == "false"
    for module in ("mod_pgsql", "mod_lua", "mod_cdr_pg_csv", "mod_hash", "mod_sofia"):
        assert tier.switch.api(f"module_exists {module}").strip() == "true", module
    errors = [line for line in tier.switch.log_file.read_text(errors="replace").splitlines()[:2000]
              if "[ERR]" in line or "[CRIT]" in line]
    assert errors == []
    assert tier.switch.global_var("billing_bridge_timeout") is None     # documented, not set
    assert tier.switch.global_var("billing_sip_code_too_many_calls") is None


def test_ip_authenticated_call_is_routed_answered_and_billed(tier):
    before, last = tier.balance("acme"), tier.last_cdr_id()
    result = tier.call("33123456789", talk_ms=1200)
    assert result.returncode == 0 and result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["destination_number"] == "33123456789" and cdr["hangup_cause"] == "NORMAL_CLEARING"
    assert cdr["billing_gateway"] == "gw_a" and cdr["billing_route_seq"] == 1
    assert cdr["status"] == "rated" and cdr["billsec"] >= 1
    rated = tier.one("SELECT sell_amount, cost_amount FROM billing.cdr WHERE uuid = %s", (cdr["uuid"],))
    # 0.60/min, 1/1: one cent per second; the carrier 0.10/min
    assert rated[0] == Decimal(cdr["billsec"]) / 100
    assert rated[1] == (Decimal(cdr["billsec"]) * Decimal("0.10") / 60).quantize(Decimal("0.000001"))
    assert tier.balance("acme") == before - rated[0]
    tier.wait_no_holds("acme")


def test_sip_digest_call_registers_is_challenged_and_billed(tier):
    before, last = tier.balance("acme"), tier.last_cdr_id()
    result = tier.call("33123400001", source_ip="127.0.0.99", scenario="uac_auth.xml", talk_ms=1000,
                       extra=["-au", SIP_USER, "-ap", SIP_PASSWORD, "-set", "user", SIP_USER,
                              "-set", "domain", SIP_DOMAIN])
    assert result.returncode == 0, result.stdout[-2000:]
    assert result.codes.count(401) == 1 and result.codes.count(407) == 1 and 200 in result.codes
    cdr = tier.cdr(since_id=last)
    assert cdr["sip_user"] == SIP_USER and cdr["status"] == "rated"
    endpoint = tier.one("SELECT id FROM billing.endpoints WHERE username = %s", (SIP_USER,))[0]
    assert cdr["billing_endpoint_id"] == endpoint
    assert tier.balance("acme") < before
    tier.wait_no_holds("acme")


def test_a_wrong_sip_password_never_reaches_billing(tier):
    last = tier.last_cdr_id()
    result = tier.call("33123400002", source_ip="127.0.0.99", scenario="uac_auth.xml",
                       extra=["-au", SIP_USER, "-ap", "wrong", "-set", "user", SIP_USER, "-set", "domain", SIP_DOMAIN],
                       timeout=10)
    assert result.returncode != 0 and 200 not in result.codes
    assert 403 in result.codes or result.codes.count(401) >= 2
    assert tier.last_cdr_id() == last


def _refusal(tier, number, source_ip=ACME_IP):
    last = tier.last_cdr_id()
    result = tier.call(number, source_ip=source_ip, scenario="uac_refused.xml", timeout=15)
    cdr = tier.cdr(since_id=last)
    return result, cdr


# Each reason of CONTRACT 1 with the SIP code docs/freeswitch.md documents.
@pytest.mark.parametrize("reason, number, source_ip, code", [
    ("invalid_number", "12ab", ACME_IP, 484),
    ("unknown_destination", "999123", ACME_IP, 404),
    ("destination_not_allowed", "3389123456", ACME_IP, 403),
    ("no_rate", "44123456", ACME_IP, 404),
    ("insufficient_funds", "33123456789", BROKE_IP, 402),
    ("negative_margin", "39123456", ACME_IP, 503),
    ("no_route", "49123456", ACME_IP, 503),
])
def test_refusal_reasons_answer_their_documented_sip_code(tier, reason, number, source_ip, code):
    result, cdr = _refusal(tier, number, source_ip)
    assert result.final == code, (reason, result.codes)
    assert 200 not in result.codes
    assert cdr["billing_reject_reason"] == reason
    assert cdr["billsec"] == 0 and cdr["answer_stamp"] is None


def test_refusals_that_need_a_changed_account(tier):
    """Changed after the ACL was loaded: route_call answers until `reloadacl`."""
    tier.sql("UPDATE billing.customers SET enabled = false WHERE name = 'closed'", fetch=False)
    tier.sql("UPDATE billing.endpoints SET ip = '10.255.255.1/32' WHERE name = 'gone-pbx'", fetch=False)
    # busy: one call in progress already (max_calls 1); thrifty: the month's limit spent
    tier.sql("""INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, max_duration,
                                               destination, created_at, expires_at)
                SELECT 'held-elsewhere', c.id, e.id, 1, 0.60, 100, '33', now(), now() + interval '1 hour'
                  FROM billing.customers c JOIN billing.endpoints e ON e.customer_id = c.id WHERE c.name = 'busy'""",
            fetch=False)
    tier.sql("""INSERT INTO billing.endpoint_month_spend (endpoint_id, month, amount)
                SELECT id, date_trunc('month', now())::date, 0.01 FROM billing.endpoints WHERE name = 'thrifty-pbx'""",
             fetch=False)
    try:
        for reason, source_ip, code in (("account_disabled", CLOSED_IP, 403), ("unknown_source", GONE_IP, 403),
                                        ("too_many_calls", BUSY_IP, 486), ("spend_limit", THRIFTY_IP, 403)):
            result, cdr = _refusal(tier, "33123456789", source_ip)
            assert result.final == code, (reason, result.codes)
            assert cdr["billing_reject_reason"] == reason
        # After reloadacl the disabled customer's address is no longer trusted: challenged.
        tier.switch.api("reloadacl")
        assert tier.switch.api(f"acl {CLOSED_IP} billing_customers").strip() == "false"
        result = tier.call("33123456789", source_ip=CLOSED_IP, scenario="uac_refused.xml", timeout=10)
        assert result.final == 407
    finally:
        tier.sql("UPDATE billing.customers SET enabled = true WHERE name = 'closed'", fetch=False)
        tier.sql(f"UPDATE billing.endpoints SET ip = '{GONE_IP}/32' WHERE name = 'gone-pbx'", fetch=False)
        tier.sql("DELETE FROM billing.call_holds WHERE call_uuid = 'held-elsewhere'", fetch=False)
        tier.switch.api("reloadacl")


def test_failover_on_503_to_the_next_carrier(tier):
    last = tier.last_cdr_id()
    offset = tier.switch.log_size()
    result = tier.call("3350123456", talk_ms=500)
    assert result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["billing_route_seq"] == 2 and cdr["billing_gateway"] == "gw_a"
    log = tier.switch.log_since(offset)
    assert "route 1 failed with NORMAL_TEMPORARY_FAILURE" in log and "route 2 answered" in log


@pytest.mark.parametrize("number, code, cause, gateway", [
    ("3351123456", 486, "USER_BUSY", "gw_486"),
    ("3352123456", 480, "NO_USER_RESPONSE", "gw_480"),
])
def test_no_failover_on_busy_or_unavailable_callee(tier, number, code, cause, gateway):
    """486 and 480 come from the callee: another carrier would ring them again."""
    last = tier.last_cdr_id()
    offset = tier.switch.log_size()
    result = tier.call(number, scenario="uac_refused.xml", timeout=15)
    assert result.final == code
    cdr = tier.cdr(since_id=last)
    assert cdr["billing_route_seq"] == 1 and cdr["billing_gateway"] == gateway
    assert cdr["hangup_cause"] == cause
    assert "route 2" not in tier.switch.log_since(offset)


def test_gateway_channel_limit_sends_the_second_call_elsewhere(tier):
    """gw_one allows one channel: while a call holds it, the next goes to the next route."""
    first = tier.call("3353000001", talk_ms=4000, background=True)
    harness.wait_for(lambda: tier.switch.api("limit_usage hash billing_gateways gw_one").strip() == "1", 10,
                     what="the first call on gw_one")
    last = tier.last_cdr_id()
    second = tier.call("3353000002", talk_ms=300)
    assert second.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["destination_number"] == "3353000002"
    assert cdr["billing_gateway"] == "gw_a" and cdr["billing_route_seq"] == 2
    assert tier.sipp.uac_result(first).final == 200
    harness.wait_for(lambda: tier.switch.api("limit_usage hash billing_gateways gw_one").strip() == "0", 10,
                     what="gw_one free again")


def test_call_is_cut_when_its_money_runs_out(tier):
    """0.03 at 0.60/min (1/1): the switch hangs up in the third second after the answer.
    FreeSWITCH's scheduler counts whole seconds of the clock (switch_scheduler.c), so the
    cut comes between 2 and 3 s after the answer and billsec, a difference of whole-second
    stamps, is exactly 3: never more than the money held."""
    last = tier.last_cdr_id()
    result = tier.call("33123456789", source_ip=TIMED_IP, scenario="uac_expect_bye.xml", timeout=20)
    assert result.returncode == 0 and result.final == 200
    cdr = tier.cdr(since_id=last)
    assert cdr["hangup_cause"] == "ALLOTTED_TIMEOUT"
    assert cdr["billsec"] == 3 and 2000 < cdr["billmsec"] <= 3200
    assert tier.balance("timed") == Decimal("0")
    tier.wait_no_holds("timed")


def test_gateway_added_by_provisioning_is_used_after_rescan(tier):
    tier.sipp.uas("uas_carrier.xml", tier.ports["new"])
    path = tier.workdir / "new_carrier.yaml"
    path.write_text(f"""providers:
  - name: carrier_new
    gateways: [{{name: gw_new, host: 127.0.0.1, port: {tier.ports['new']}, max_channels: 5}}]
    rates: [{{prefix: "3355", rate: "0.01", increment: "1/1"}}]
""")
    flask(tier.database_url, "provision", "load", str(path))
    assert "gw_new" not in tier.switch.api("sofia status gateway")
    tier.switch.fs_cli("carrier-added")                     # docs/freeswitch.md, "First call"
    harness.wait_for(lambda: "carriers::gw_new" in tier.switch.api("sofia status gateway"), 10, what="gw_new")
    last = tier.last_cdr_id()
    assert tier.call("3355123456").final == 200
    assert tier.cdr(since_id=last)["billing_gateway"] == "gw_new"
