"""route.lua end to end: the real script, in the emulator, against billing.route_call in
the test database, as the billing_freeswitch role; then the CDR the switch would write.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests import factories
from tests.lua.emulator import Host, Outcome

SOURCE_IP = "198.51.100.7"
NUMBER = "33123456789"


@pytest.fixture(autouse=True)
def needs_route_call(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT to_regproc('billing.route_call') IS NOT NULL")
        if not cur.fetchone()[0]:
            pytest.skip("billing.route_call (routing branch) is not merged yet")


class World:
    """A customer with an IP endpoint, France in the catalogue, three carriers."""

    def __init__(self, pg, balance="10", sell="0.0200", costs=("0.0050", "0.0060", "0.0070"),
                 max_channels=(None, None, None), **customer_kw):
        self.pg = pg
        self.weight = factories.weight()
        self.mobile = factories.weight()
        self.permission = factories.permission([self.weight])
        factories.destination("33", self.weight)
        factories.destination("336", self.mobile)
        self.card = factories.ratecard()
        self.rate = factories.sell_rate(self.card, "33", sell, increment="60/60")
        factories.sell_rate(self.card, "336", "0.0800", increment="60/60")
        self.customer = factories.customer(balance=balance, ratecards=[self.card], **customer_kw)
        self.endpoint = factories.endpoint(self.customer, self.permission, ip=SOURCE_IP + "/32")
        self.providers, self.gateways = [], []
        for i, (cost, limit) in enumerate(zip(costs, max_channels), start=1):
            p = factories.provider(name=f"carrier{i}")
            g = factories.gateway(p, name=f"gw{i}", host=f"192.0.2.{10 + i}", max_channels=limit)
            factories.provider_rate(p, "33", cost)
            self.providers.append(p)
            self.gateways.append(g)

    def balance(self) -> Decimal:
        with self.pg.cursor() as cur:
            cur.execute("SELECT balance FROM billing.customers WHERE id = %s", (self.customer.id,))
            return cur.fetchone()[0]


@pytest.fixture()
def world(pg):
    return World(pg)


def place(host, as_freeswitch, destination=NUMBER, **kw):
    channel = host.call(destination=destination, network_addr=kw.pop("network_addr", SOURCE_IP), **kw)
    with as_freeswitch:
        host.route(channel)
    return channel


def route_calls(host):
    return [q for q in host.queries if "billing.route_call" in q]


# --------------------------------------------------------------------------- routed calls

def test_answered_call_sets_contract_variables_and_bridges_once(host, world, as_freeswitch):
    host.gateways = {"gw1": Outcome.answer(talk=42), "gw2": Outcome.answer(), "gw3": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_CLEARING"
    assert [b["gateway"] for b in ch.bridges] == ["gw1"]
    assert ch.bridges[0]["number"] == NUMBER
    v = ch.vars
    assert v["billing_customer_id"] == str(world.customer.id)
    assert v["billing_endpoint_id"] == str(world.endpoint.id)
    assert v["billing_destination"] == NUMBER
    assert v["billing_sell_prefix"] == "33"
    assert Decimal(v["billing_sell_rate"]) == Decimal("0.0200")
    assert v["billing_route_seq"] == "1"
    assert v["billing_gateway"] == "gw1"
    assert v["billing_provider_id"] == str(world.providers[0].id)
    assert Decimal(v["billing_cost_rate"]) == Decimal("0.0050")
    assert v["hangup_after_bridge"] == "true"
    assert v["continue_on_fail"] == "true"
    # credit in quotas (CONTRACT 1b): cut at the end of the grant, re-authorized before
    max_duration, granted = int(v["billing_max_duration"]), int(v["billing_granted_seconds"])
    assert (max_duration, granted) == (14400, 300)
    assert v["execute_on_answer"] == f"sched_hangup +{granted} ALLOTTED_TIMEOUT"
    assert ("sched_hangup", f"+{granted} ALLOTTED_TIMEOUT") in ch.executed
    assert v["api_on_answer"] == (f"sched_api +290 billing-reauth-{ch.uuid} luarun billing/reauth.lua {ch.uuid}"
                                  " ${strepoch()} 10")
    assert v["api_hangup_hook"] == f"sched_del billing-reauth-{ch.uuid}"
    assert v["call_timeout"] == "60"                        # settings.ring_timeout_seconds
    # carrier legs are not counted by the switch's admission limits (switch.conf.xml)
    assert ch.apps("bridge") == [f"{{no_throttle_limits=true}}sofia/gateway/gw1/{NUMBER}"]
    assert "billing_reject_reason" not in v
    assert not ch.fell_through
    assert len(route_calls(host)) == 1
    assert host.dbh_released == host.dbh_opened == 1


def test_failover_in_order_until_a_route_answers(host, world, as_freeswitch):
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE", sip=503),
                     "gw2": Outcome(cause="GATEWAY_DOWN"),
                     "gw3": Outcome.answer(talk=30)}
    ch = place(host, as_freeswitch)
    assert [b["gateway"] for b in ch.bridges] == ["gw1", "gw2", "gw3"]
    assert [b["vars"]["billing_route_seq"] for b in ch.bridges] == ["1", "2", "3"]
    assert [b["vars"]["billing_gateway"] for b in ch.bridges] == ["gw1", "gw2", "gw3"]
    assert ch.vars["billing_gateway"] == "gw3"
    assert ch.vars["billing_provider_id"] == str(world.providers[2].id)
    assert Decimal(ch.vars["billing_cost_rate"]) == Decimal("0.0070")
    assert ch.hangup_cause == "NORMAL_CLEARING"
    assert ch.vars["billsec"] == "30"


def test_answered_call_with_hangup_after_bridge_off_tries_no_other_route(flavour, pg, as_freeswitch):
    """1.10.12 leaves originate_disposition "SUCCESS" after an answered bridge; with the
    caller's leg still up, that must not read as a failure and ring the next carrier."""
    World(pg)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x", "billing_hangup_after_bridge": "false"})
    host.gateways = {"gw1": Outcome.answer(talk=20), "gw2": Outcome.answer(), "gw3": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert [b["gateway"] for b in ch.bridges] == ["gw1"]
    assert ch.vars["hangup_after_bridge"] == "false"
    assert ch.vars["originate_disposition"] == "SUCCESS"
    assert ch.hangup_cause == "NORMAL_CLEARING" and ch.vars["billsec"] == "20"
    assert not ch.fell_through
    assert "route 1 answered" in host.log_text() and "failed" not in host.log_text()


CALLEE_CAUSES = [("USER_BUSY", 486), ("NO_ANSWER", 480), ("CALL_REJECTED", 603), ("NO_USER_RESPONSE", 408),
                 ("NUMBER_CHANGED", 410), ("INVALID_NUMBER_FORMAT", 484), ("ORIGINATOR_CANCEL", 487)]


def test_no_failover_on_causes_from_the_callee(flavour, pg, as_freeswitch):
    World(pg, balance="1000")          # each call keeps its hold (no CDR here)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    for cause, sip in CALLEE_CAUSES:
        host.gateways = {"gw1": Outcome(cause=cause, sip=sip), "gw2": Outcome.answer(), "gw3": Outcome.answer()}
        ch = place(host, as_freeswitch)
        assert [b["gateway"] for b in ch.bridges] == ["gw1"], cause
        assert ch.hangup_cause == cause
        assert ch.sip_response == sip          # the carrier's code reaches the customer
        assert not ch.fell_through


def test_caller_hanging_up_while_ringing_stops_everything(host, world, as_freeswitch):
    host.gateways = {"gw1": Outcome(caller_cancels=True, ring=7), "gw2": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert [b["gateway"] for b in ch.bridges] == ["gw1"]
    assert ch.hangup_cause == "ORIGINATOR_CANCEL"


def test_all_routes_fail_hangs_up_with_the_last_cause(host, world, as_freeswitch):
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE", sip=503),
                     "gw2": Outcome(cause="RECOVERY_ON_TIMER_EXPIRE", sip=408),
                     "gw3": Outcome(cause="GATEWAY_DOWN")}
    ch = place(host, as_freeswitch)
    assert len(ch.bridges) == 3
    assert ch.hangup_cause == "GATEWAY_DOWN"
    assert ch.sip_response == 503      # mod_sofia hangup_cause_to_sip
    assert ch.vars["billing_route_seq"] == "3"
    assert not ch.fell_through


def test_gateway_channel_limits_with_limit_execute(flavour, pg, as_freeswitch):
    world = World(pg, max_channels=(2, None, 5))
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE"), "gw2": Outcome(cause="GATEWAY_DOWN"),
                     "gw3": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.apps("limit_execute") == [
        f"hash billing_gateways gw1 2 bridge {{no_throttle_limits=true}}sofia/gateway/gw1/{NUMBER}",
        f"hash billing_gateways gw3 5 bridge {{no_throttle_limits=true}}sofia/gateway/gw3/{NUMBER}",
    ]
    # gw2 has no limit: a plain bridge; the counters were held during each attempt
    assert ch.bridges[1]["gateway"] == "gw2" and ch.bridges[1]["limit_usage"].get(("billing_gateways", "gw2")) is None
    assert ch.bridges[0]["limit_usage"][("billing_gateways", "gw1")] == 1
    assert host.limits[("billing_gateways", "gw1")] == 0 and host.limits[("billing_gateways", "gw3")] == 0
    assert world.gateways[0].max_channels == 2


def test_a_switch_takes_its_share_of_each_gateway_limit(flavour, pg, as_freeswitch):
    """billing_gateway_limit_share=50 (two switches sharing the carriers): 5 channels
    give this switch 2, rounded down so the switches together stay within 5; a gateway
    of 1 channel gives it none and is skipped like a full one; no limit stays none."""
    World(pg, max_channels=(5, 1, None))
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x", "billing_gateway_limit_share": "50"})
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE"), "gw2": Outcome.answer(),
                     "gw3": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.apps("limit_execute") == [
        f"hash billing_gateways gw1 2 bridge {{no_throttle_limits=true}}sofia/gateway/gw1/{NUMBER}"]
    assert [b["gateway"] for b in ch.bridges] == ["gw1", "gw3"]
    assert ch.vars["billing_gateway"] == "gw3" and ch.vars["billing_route_seq"] == "3"
    assert "gateway gw2 has no channel on this switch (50% of 1)" in host.log_text()


def test_full_gateway_is_skipped_and_the_next_route_used(flavour, pg, as_freeswitch):
    World(pg, max_channels=(2, 3, None))
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.limits[("billing_gateways", "gw1")] = 2      # two calls already up through gw1
    host.gateways = {"gw1": Outcome.answer(), "gw2": Outcome.answer(talk=5)}
    ch = place(host, as_freeswitch)
    assert [b["gateway"] for b in ch.bridges] == ["gw2"]
    assert ch.vars["billing_gateway"] == "gw2" and ch.vars["billing_route_seq"] == "2"
    assert "gw1 is at its limit of 2 channels" in host.log_text()
    assert host.limits[("billing_gateways", "gw1")] == 2


def test_every_gateway_full_ends_with_congestion(flavour, pg, as_freeswitch):
    World(pg, max_channels=(1, 1, 1))
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    for i in (1, 2, 3):
        host.limits[("billing_gateways", f"gw{i}")] = 1
    ch = place(host, as_freeswitch)
    assert ch.bridges == []
    assert ch.hangup_cause == "NORMAL_CIRCUIT_CONGESTION"
    assert ch.sip_response == 503


def test_call_is_cut_at_max_duration_counted_from_answer(flavour, pg, as_freeswitch):
    # 0.10 at 0.02/min (60/60): 5 minutes of credit
    world = World(pg, balance="0.10")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome(ring=25, talk=3600)}
    ch = place(host, as_freeswitch)
    assert ch.vars["billing_max_duration"] == "300"
    assert ch.hangup_cause == "ALLOTTED_TIMEOUT"
    assert ch.vars["billsec"] == "300"            # ringing not counted
    assert int(ch.vars["duration"]) == 325
    host.cdr_insert(ch)
    assert world.balance() >= 0


def quota_host(flavour, pg, **kw):
    """Quotas of 60 s re-authorized 10 s before they run out."""
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.settings SET quota_seconds = 60, reauth_margin_seconds = 10")
    return Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"}, **kw)


def test_funds_for_two_and_a_half_quotas_are_re_authorized_twice_then_cut(flavour, pg, as_freeswitch):
    """0.05 at 0.02/min (1/1): 150 s of credit -- 60, then 120, then 150 (final)."""
    World(pg, balance="0.05")
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET increment_first = 1, increment_next = 1")
    host = quota_host(flavour, pg)
    host.gateways = {"gw1": Outcome(ring=3, talk=3600)}
    ch = place(host, as_freeswitch)
    assert ch.vars["billing_max_duration"] == "150"
    assert ch.vars["execute_on_answer"] == "sched_hangup +60 ALLOTTED_TIMEOUT"      # the first grant
    assert ch.vars["billing_granted_seconds"] == "150"                               # the last one
    assert ch.hangup_cause == "ALLOTTED_TIMEOUT"
    assert ch.vars["billsec"] == "150"
    reauths = [c for c in host.api_commands if c.startswith("luarun billing/reauth.lua")]
    assert len(reauths) == 2                                 # at 50 s and at 110 s
    assert "credit granted up to 120 s" in host.log_text()
    assert "credit granted up to 150 s, the last grant" in host.log_text()
    host.cdr_insert(ch)
    with pg.cursor() as cur:
        cur.execute("SELECT sell_amount, overrun_seconds FROM billing.cdr WHERE uuid = %s", (ch.uuid,))
        assert cur.fetchone() == (Decimal("0.050000"), 0)
    assert [c for c in host.api_commands if c.startswith("sched_del billing-reauth-")]   # api_hangup_hook


def test_a_call_ending_before_its_grant_is_not_re_authorized(flavour, pg, as_freeswitch):
    World(pg)
    host = quota_host(flavour, pg)
    host.gateways = {"gw1": Outcome.answer(talk=30)}
    ch = place(host, as_freeswitch)
    assert ch.vars["billsec"] == "30" and ch.hangup_cause == "NORMAL_CLEARING"
    assert not [c for c in host.api_commands if c.startswith("luarun billing/reauth.lua")]
    assert not [t for t in host.tasks if t["kind"] == "api"]     # the hangup hook removed it


def test_a_top_up_during_the_call_keeps_it_going(flavour, pg, as_freeswitch):
    world = World(pg, balance="0.05")
    host = quota_host(flavour, pg)
    host.gateways = {"gw1": Outcome(ring=1, talk=400)}
    original = host._api

    def api_with_top_up(command):
        if str(command).startswith("luarun billing/reauth.lua") and not getattr(host, "topped_up", False):
            host.topped_up = True
            with pg.cursor() as cur:                        # the portal's top-up, not the switch's
                cur.execute("RESET ROLE")
                factories.topup(world.customer, "1.00")
                cur.execute("SET ROLE billing_freeswitch")
        return original(command)

    host._api = api_with_top_up
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_CLEARING" and ch.vars["billsec"] == "400", host.log_text()


def test_re_authorization_that_cannot_reach_the_database_ends_the_call_with_its_grant(flavour, pg, as_freeswitch):
    World(pg)
    host = quota_host(flavour, pg)
    host.gateways = {"gw1": Outcome(ring=1, talk=3600)}
    original = host._luarun

    def database_gone_for_reauth(args):
        if args.startswith("billing/reauth.lua"):
            host.db_down = True
        return original(args)

    host._luarun = database_gone_for_reauth
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "ALLOTTED_TIMEOUT" and ch.vars["billsec"] == "60"
    assert "re-authorization unreachable, the call ends with its grant" in host.log_text()


def test_no_max_duration_means_no_sched_hangup(flavour, pg, as_freeswitch):
    world = World(pg, billing_type="postpaid", credit_limit="1000000")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome.answer(talk=10)}
    ch = place(host, as_freeswitch)
    if ch.vars.get("billing_max_duration"):
        # route_call caps every call at billing.settings.max_call_seconds
        assert ch.vars["execute_on_answer"].startswith("sched_hangup +")
    else:
        assert "execute_on_answer" not in ch.vars
    assert world.customer.id


def test_media_options_of_endpoint_and_gateways(flavour, pg, as_freeswitch):
    world = World(pg)
    world.endpoint.codecs = "PCMA,G729"
    world.endpoint.ignore_early_media = True
    world.gateways[1].bypass_media = True
    factories.db.session.flush()
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE"), "gw2": Outcome.answer()}
    ch = place(host, as_freeswitch)
    first, second = ch.bridges
    assert first["vars"]["absolute_codec_string"] == "PCMA,G729"
    assert first["vars"]["bypass_media"] == "false" and second["vars"]["bypass_media"] == "true"
    assert first["vars"]["ignore_early_media"] == "true" and second["vars"]["ignore_early_media"] == "true"


def test_sip_authenticated_user_is_identified_by_user_name(flavour, pg, as_freeswitch):
    world = World(pg)
    sip = factories.endpoint(world.customer, world.permission, auth="sip", username="acme100")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome.answer(talk=5)}
    ch = place(host, as_freeswitch, network_addr="203.0.113.50",
               variables={"sip_authorized": "true", "sip_auth_username": "acme100"})
    assert ch.vars["billing_endpoint_id"] == str(sip.id)
    # without sofia's sip_authorized the user name is not believed
    ch2 = place(host, as_freeswitch, network_addr="203.0.113.50", variables={"sip_auth_username": "acme100"})
    assert ch2.vars["billing_reject_reason"] == "unknown_source"


def test_caller_gone_before_the_script_runs_costs_no_query(host, world, as_freeswitch):
    ch = host.call(destination=NUMBER, network_addr=SOURCE_IP)
    ch.hangup("ORIGINATOR_CANCEL")
    with as_freeswitch:
        host.route(ch)
    assert host.queries == [] and ch.bridges == []


# --------------------------------------------------------------------------- refused calls

def refused(ch, reason, cause, sip):
    assert ch.vars["billing_reject_reason"] == reason
    assert ch.hangup_cause == cause
    assert ch.sip_response == sip
    assert ch.bridges == []
    assert ch.answered_at is None
    assert not ch.fell_through


INVALID_NUMBERS = ["", "+", "33 123", "33a", "+" + "1" * 21, "33'; DELETE FROM billing.customers; --", "33\x00",
                   "${uuid}", "33%27", "\u0663\u0663"]


def test_invalid_number_refused_before_any_sql(host, world, as_freeswitch):
    for number in INVALID_NUMBERS:
        refused(place(host, as_freeswitch, destination=number), "invalid_number", "INVALID_NUMBER_FORMAT", 484)
    assert host.queries == [] and host.dbh_opened == 0


def test_unknown_source(host, world, as_freeswitch):
    refused(place(host, as_freeswitch, network_addr="203.0.113.99"), "unknown_source", "CALL_REJECTED", 403)


def test_account_disabled(host, world, as_freeswitch):
    world.customer.enabled = False
    factories.db.session.flush()
    refused(place(host, as_freeswitch), "account_disabled", "CALL_REJECTED", 403)


def test_unknown_destination(host, world, as_freeswitch):
    refused(place(host, as_freeswitch, destination="49301234567"), "unknown_destination", "NO_ROUTE_DESTINATION", 404)


def test_destination_not_allowed(host, world, as_freeswitch):
    refused(place(host, as_freeswitch, destination="33612345678"), "destination_not_allowed",
            "OUTGOING_CALL_BARRED", 403)


def test_no_rate(host, world, as_freeswitch):
    factories.destination("34", world.weight)
    refused(place(host, as_freeswitch, destination="34912345678"), "no_rate", "NO_ROUTE_DESTINATION", 404)


def test_too_many_calls(host, world, as_freeswitch):
    world.customer.max_calls = 1
    factories.db.session.flush()
    host.gateways = {"gw1": Outcome.answer(talk=5)}
    place(host, as_freeswitch)       # its hold stays until its CDR arrives
    refused(place(host, as_freeswitch), "too_many_calls", "NORMAL_CIRCUIT_CONGESTION", 486)


def test_spend_limit(host, world, as_freeswitch):
    world.endpoint.spend_limit_month = Decimal("0")
    factories.db.session.flush()
    refused(place(host, as_freeswitch), "spend_limit", "CALL_REJECTED", 403)


def test_insufficient_funds(flavour, pg, as_freeswitch):
    World(pg, balance="0.01")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    refused(place(host, as_freeswitch), "insufficient_funds", "CALL_REJECTED", 402)


def test_negative_margin(flavour, pg, as_freeswitch):
    World(pg, sell="0.0040")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    refused(place(host, as_freeswitch), "negative_margin", "NO_ROUTE_DESTINATION", 503)


def test_no_route(flavour, pg, as_freeswitch):
    World(pg, costs=())
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    refused(place(host, as_freeswitch), "no_route", "NO_ROUTE_DESTINATION", 503)


def test_prompt_and_sip_code_are_configurable(flavour, pg, as_freeswitch):
    World(pg, balance="0.01")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x",
                                       "billing_prompt_insufficient_funds": "ivr/ivr-not_have_enough_credit.wav",
                                       "billing_sip_code_insufficient_funds": "403"})
    ch = place(host, as_freeswitch)
    assert ch.executed[:2] == [("pre_answer", ""), ("playback", "ivr/ivr-not_have_enough_credit.wav")]
    refused(ch, "insufficient_funds", "CALL_REJECTED", 403)


# --------------------------------------------------------------------------- hostile input

HOSTILE_CALLER_IDS = ["x'); DELETE FROM billing.customers; --", "O'Brien", "\\'", "a\x00b", "${billing_dsn}",
                      "\u00e9" * 10, "'" * 64]


def test_hostile_caller_id_cannot_reach_sql(flavour, pg, as_freeswitch):
    world = World(pg, balance="1000")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    host.gateways = {"gw1": Outcome.answer(talk=1)}
    for caller_id in HOSTILE_CALLER_IDS:
        host.queries.clear()
        ch = place(host, as_freeswitch, caller_id=caller_id)
        assert ch.vars["billing_route_seq"] == "1"              # the call itself is fine
        args = route_call_arguments(route_calls(host)[0])
        assert len(args) == 5
        if caller_id.isascii() and caller_id.isprintable() and "\\" not in caller_id:
            assert args[3] == caller_id                         # one literal, exactly the text received
        else:
            assert args[3] is None                              # not plain text: sent as NULL
    with world.pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.customers")
        assert cur.fetchone()[0] >= 1


def route_call_arguments(query):
    """The five arguments of route_call as PostgreSQL reads them (None for NULL)."""
    inner = re.search(r"billing\.route_call\((.*)\) AS r ", query).group(1)
    tokens = re.findall(r"'(?:[^']|'')*'::\w+|NULL::\w+", inner)
    assert ", ".join(tokens) == inner                     # nothing outside the literals
    return [None if t.startswith("NULL") else t[1:t.rindex("'")].replace("''", "'") for t in tokens]


def test_hostile_sip_user_matches_nobody(host, world, as_freeswitch):
    for user in ["x' OR '1'='1", "acme'--", "a\x00b", "a\\'b", "'; SELECT pg_sleep(5); --"]:
        ch = place(host, as_freeswitch, network_addr="203.0.113.50",
                   variables={"sip_authorized": "true", "sip_auth_username": user})
        refused(ch, "unknown_source", "CALL_REJECTED", 403)


def test_hostile_network_addr_becomes_null(host, world, as_freeswitch):
    for addr in ["198.51.100.7'; --", "not-an-ip", "", "999.1.1.1", "198.51.100.7/32"]:
        host.queries.clear()
        ch = place(host, as_freeswitch, network_addr=addr)
        refused(ch, "unknown_source", "CALL_REJECTED", 403)
        assert route_call_arguments(route_calls(host)[0])[1] is None


# --------------------------------------------------------------------------- fail closed

def test_database_down_fails_closed(flavour, pg, as_freeswitch):
    World(pg)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"}, db_down=True)
    host.gateways = {"gw1": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE" and ch.bridges == []
    assert ch.vars["billing_reject_reason"] == "billing_unavailable"
    assert any("FAIL CLOSED" in e and "database unreachable" in e for e in host.errors())


def test_database_that_never_answers_fails_closed_in_time(flavour, pg, as_freeswitch):
    """The worker thread is stuck (mod_pgsql retrying a dead connection): the call gives up
    after billing_route_timeout_ms and refuses with 503 and Retry-After."""
    World(pg)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x", "billing_route_timeout_ms": "1500"},
                db_stalls=True)
    host.gateways = {"gw1": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE" and ch.bridges == []
    assert ch.sip_response == 503 and ch.response_headers == {"Retry-After": "10"}
    assert 1.5 <= ch.ended_at - ch.created < 1.6
    assert host.workers_started == 1
    assert host.handles_flushed == 1                      # the stale pooled siblings are dropped
    assert "billing_route_query" not in ch.vars           # a late worker finds nothing to run
    assert any("no answer from the database within 1500 ms" in e for e in host.errors())
    # a slow (overloaded) server, not a lost one: the next timeouts within 10 s do not
    # drop the handles again (each drop makes the next calls open new connections)
    ch = place(host, as_freeswitch)
    assert ch.sip_response == 503 and host.handles_flushed == 1
    host.clock += 10
    ch = place(host, as_freeswitch)
    assert ch.sip_response == 503 and host.handles_flushed == 2


def test_fail_closed_cause_is_one_the_switch_knows(flavour, pg):
    """TEMPORARY_FAILURE is not a FreeSWITCH cause: hung up with it, a call ends as
    NORMAL_CLEARING and the caller gets 480 (what the real switch showed)."""
    host = Host(flavour, pg)
    ch = host.call(destination=NUMBER)
    ch.hangup("TEMPORARY_FAILURE")
    assert (ch.hangup_cause, ch.sip_response) == ("NORMAL_CLEARING", 480)
    lua = host.new_state()
    router = lua.eval('(require("billing.lib.router"))')
    assert router.CAUSES[router.FAIL_CLOSED_CAUSE] is True
    assert router.CAUSES["TEMPORARY_FAILURE"] is None


def test_route_worker_without_a_waiting_call_runs_nothing(flavour, pg, as_freeswitch):
    World(pg)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    ch = host.call(destination=NUMBER)
    with as_freeswitch:
        host._api(f"luarun billing/route_query.lua {ch.uuid}")
        host._api("luarun billing/route_query.lua not-a-uuid'")
    assert host.queries == []
    ch.set_variable("billing_route_query", "DELETE FROM billing.customers")
    with as_freeswitch:
        host._api(f"luarun billing/route_query.lua {ch.uuid}")
    assert host.queries == []                                  # only route_call's own statement
    assert "billing_route_answer" not in ch.vars


def test_missing_dsn_fails_closed(flavour, pg, as_freeswitch):
    World(pg)
    host = Host(flavour, pg)
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"
    assert "billing_dsn is not set" in host.log_text()


def test_query_error_fails_closed(host, world, as_freeswitch, pg):
    with pg.cursor() as cur:
        cur.execute("DROP FUNCTION billing.route_options(bigint, text)")
    host.gateways = {"gw1": Outcome.answer()}
    ch = place(host, as_freeswitch)
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE" and ch.bridges == []
    assert any("billing.route_call failed" in e for e in host.errors())
    assert host.dbh_released == 1


def test_script_error_fails_closed(host, world, as_freeswitch):
    def broken(data):
        raise RuntimeError("boom")

    host.gateways = {"gw1": Outcome.answer()}
    ch = host.call(destination=NUMBER, network_addr=SOURCE_IP)
    ch._app_bridge = broken
    with as_freeswitch:
        host.route(ch)
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"
    assert any("script error" in e for e in host.errors())


# --------------------------------------------------------------------------- CDR loop

def cdr_row(pg, uuid):
    with pg.cursor() as cur:
        cur.execute("SELECT * FROM billing.fs_cdr WHERE uuid = %s", (uuid,))
        names = [d.name for d in cur.description]
        row = cur.fetchone()
    return dict(zip(names, row)) if row else None


def test_routed_call_cdr_is_billed(flavour, pg, as_freeswitch):
    world = World(pg)
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"}, switch_tz="Pacific/Auckland")
    host.gateways = {"gw1": Outcome(cause="NORMAL_TEMPORARY_FAILURE", sip=503), "gw2": Outcome.answer(talk=61)}
    before = world.balance()
    ch = place(host, as_freeswitch)
    with as_freeswitch:
        host.cdr_insert(ch)          # mod_cdr_pg_csv's INSERT from the shipped config, as the switch's role
    row = cdr_row(pg, ch.uuid)
    assert row["billing_gateway"] == "gw2" and row["billing_route_seq"] == 2
    assert row["billing_customer_id"] == world.customer.id
    assert row["billsec"] == 61 and row["hangup_cause"] == "NORMAL_CLEARING"
    assert row["sip_hangup_disposition"] == "send_bye"
    assert row["last_bridge_proto_specific_hangup_cause"] is None or row["last_bridge_proto_specific_hangup_cause"]
    # stamps come from the epochs: right instant although the switch's zone is not the DB's
    assert int(row["start_stamp"].timestamp()) == int(ch.created)
    assert int(row["answer_stamp"].timestamp()) == int(ch.answered_at)
    with pg.cursor() as cur:
        cur.execute("SELECT to_regproc('billing_private.tg_fs_cdr__bill') IS NOT NULL")
        billing_merged = cur.fetchone()[0]
    if billing_merged:               # the CDR billing trigger (billing branch): close the loop
        assert row["status"] == "rated", row["unrated_reason"]
        # 61 s at 0.02/min in 60/60 increments = 2 minutes = 0.04
        assert before - world.balance() == Decimal("0.04")
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM billing.call_holds WHERE call_uuid = %s", (ch.uuid,))
            assert cur.fetchone()[0] == 0


def test_refused_call_cdr_costs_nothing(flavour, pg, as_freeswitch):
    world = World(pg, balance="0.01")
    host = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"})
    ch = place(host, as_freeswitch)
    with as_freeswitch:
        host.cdr_insert(ch)
    row = cdr_row(pg, ch.uuid)
    assert row["billing_reject_reason"] == "insufficient_funds"
    assert row["answer_stamp"] is None and row["billsec"] == 0
    assert row["sip_hangup_disposition"] == "send_refuse"
    assert world.balance() == Decimal("0.01")


def test_caller_id_with_quote_survives_the_cdr_insert(host, world, as_freeswitch, pg):
    host.gateways = {"gw1": Outcome.answer(talk=1)}
    ch = place(host, as_freeswitch, caller_id="O'Brien")
    with as_freeswitch:
        host.cdr_insert(ch)
    # mod_cdr_pg_csv escapes twice (PQescapeString, then %q): FreeSWITCH stores it doubled
    assert cdr_row(pg, ch.uuid)["caller_id_number"] == "O''Brien"
