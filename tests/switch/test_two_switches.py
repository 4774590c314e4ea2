"""Two FreeSWITCH processes on one billing database (issue #14, "several switches"):
two installs of freeswitch/conf on ports of their own, both pointed at the same
database, sipp customers calling either switch and sipp carriers behind both.

What the database counts holds across the switches: a customer's and an endpoint's
`max_calls` (the holds of calls in progress), the funds (balance less every hold) and
the credit quotas that re-authorization grants. What FreeSWITCH counts does not: a
gateway's `max_channels` is a `limit hash` counter in each switch's memory, so a
gateway allowing one channel carries one call per switch (docs/scaling-switches.md).
"""
from __future__ import annotations

import os
import textwrap
import threading
from decimal import Decimal

import psycopg2
import pytest

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.provisioning.loader import load_text
from tests.conftest import PREFIX, create_database, drop_database
from tests.switch import harness

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]

SIP_DOMAIN = "sip.two.example"
PAIR_IP = "127.0.1.1"           # max_calls 2
LINE_IP = "127.0.1.2"           # endpoint line-one: max_calls 1
LINE_TWO_IP = "127.0.1.3"       # the same customer's other endpoint: no limit of its own
FUNDED_IP = "127.0.1.4"         # 0.12: three holds of one 4 s quota at 0.60/min
SHARED_IP = "127.0.1.5"         # 0.16: four quotas for two calls, one on each switch
WIDE_IP = "127.0.1.6"           # plenty of money, no limit: the gateway test
QUOTA_SECONDS, MARGIN_SECONDS = 4, 2


def provisioning(ports: dict[str, int]) -> str:
    return textwrap.dedent(f"""\
        currency: EUR
        settings: {{sip_domain: {SIP_DOMAIN}, max_call_seconds: 600, quota_seconds: {QUOTA_SECONDS},
                    reauth_margin_seconds: {MARGIN_SECONDS}}}
        weights: [{{name: fixed}}]
        permissions: [{{name: standard, weights: [fixed]}}]
        destinations: [{{prefix: "33", name: France, weight: fixed}}]
        ratecards:
          - name: retail
            rates: [{{prefix: "33", rate: "0.60", increment: "1/1"}}]
        providers:
          - name: carrier_a
            gateways: [{{name: gw_a, host: 127.0.0.1, port: {ports["a"]}, max_channels: 30, priority: 1}}]
            rates: [{{prefix: "33", rate: "0.10", increment: "1/1"}}]
          - name: carrier_one
            gateways: [{{name: gw_one, host: 127.0.0.1, port: {ports["one"]}, max_channels: 1, priority: 1}}]
            rates: [{{prefix: "3353", rate: "0.05", increment: "1/1"}}]
          - name: carrier_two
            gateways: [{{name: gw_two, host: 127.0.0.1, port: {ports["one"]}, max_channels: 2, priority: 1}}]
            rates: [{{prefix: "3356", rate: "0.05", increment: "1/1"}}]
        customers:
          - name: pair
            balance: "10.00"
            max_calls: 2
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: pair-pbx, auth: ip, ip: {PAIR_IP}/32, permission: standard}}]
          - name: lines
            balance: "10.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints:
              - {{name: line-one, auth: ip, ip: {LINE_IP}/32, permission: standard, max_calls: 1}}
              - {{name: line-two, auth: ip, ip: {LINE_TWO_IP}/32, permission: standard}}
          - name: funded
            balance: "0.12"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: funded-pbx, auth: ip, ip: {FUNDED_IP}/32, permission: standard}}]
          - name: shared
            balance: "0.16"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: shared-pbx, auth: ip, ip: {SHARED_IP}/32, permission: standard}}]
          - name: wide
            balance: "100.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: wide-pbx, auth: ip, ip: {WIDE_IP}/32, permission: standard}}]
        """)


class Pair:
    """Two switches, their sipp customers and carriers, the database they share."""

    def __init__(self, switches, sipp, database_url, workdir):
        self.switches, self.sipp, self.database_url, self.workdir = switches, sipp, database_url, workdir

    def sql(self, statement: str, params=None):
        conn = psycopg2.connect(self.database_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def one(self, statement: str, params=None):
        rows = self.sql(statement, params)
        return rows[0] if rows else None

    def call(self, switch: int, number: str, source_ip: str, *, scenario: str = "uac_ip.xml", talk_ms: int = 500,
             timeout: float = 30, background: bool = False):
        target = f"127.0.0.1:{self.switches[switch].settings['billing_customers_sip_port']}"
        return self.sipp.uac(scenario, target, number, source_ip=source_ip, extra=["-d", str(talk_ms)],
                             timeout=timeout, background=background)

    def held_call(self, switch: int, number: str, source_ip: str):
        """A call that stays up until the switch hangs it up (hang_up_all): the test
        does not race a timer on a busy machine."""
        return self.call(switch, number, source_ip, scenario="uac_expect_bye.xml", timeout=60, background=True)

    def hang_up_all(self):
        for switch in self.switches:
            switch.api("hupall NORMAL_CLEARING")

    def refused(self, switch: int, source_ip: str, number: str = "33123456789"):
        return self.call(switch, number, source_ip, scenario="uac_refused.xml", timeout=15)

    def refusals(self, *attempts: tuple[int, str]):
        """Refused calls placed at the same time, (switch, source_ip) each; their results."""
        started = [self.call(switch, "33123456789", ip, scenario="uac_refused.xml", timeout=15, background=True)
                   for switch, ip in attempts]
        return [self.sipp.uac_result(proc, timeout=15) for proc in started]

    def holds(self, customer: str) -> int:
        return self.one("""SELECT count(*) FROM billing.call_holds h JOIN billing.customers c ON c.id = h.customer_id
                            WHERE c.name = %s""", (customer,))[0]

    def wait_holds(self, customer: str, count: int, timeout: float = 15.0):
        harness.wait_for(lambda: self.holds(customer) == count, timeout, step=0.05,
                         what=f"{count} hold(s) of {customer}")

    def balance(self, customer: str) -> Decimal:
        return self.one("SELECT balance FROM billing.customers WHERE name = %s", (customer,))[0]

    def cdrs(self, customer: str) -> list[dict]:
        conn = psycopg2.connect(self.database_url)
        try:
            with conn.cursor() as cur:
                cur.execute("""SELECT f.*, r.sell_amount, r.held_seconds, r.overrun_seconds
                                 FROM billing.fs_cdr f JOIN billing.customers c ON c.id = f.billing_customer_id
                                 LEFT JOIN billing.cdr r ON r.uuid = f.uuid
                                WHERE c.name = %s ORDER BY f.id""", (customer,))
                names = [d.name for d in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def wait_cdrs(self, customer: str, count: int, timeout: float = 10.0) -> list[dict]:
        """The customer's CDRs once there are `count` (mod_cdr_pg_csv writes each as its call ends)."""
        harness.wait_for(lambda: len(self.cdrs(customer)) >= count, timeout, step=0.1, what=f"{count} CDRs of {customer}")
        return self.cdrs(customer)

    def switch_of(self, cdr: dict) -> int:
        """Which switch wrote a CDR: the uuid is in that switch's log only."""
        found = [i for i, s in enumerate(self.switches) if cdr["uuid"] in s.log_file.read_text(errors="replace")]
        assert len(found) == 1, (cdr["uuid"], found)
        return found[0]


def _provision(database_url: str, text: str) -> None:
    """What `flask --app wsgi provision load` does (the tier's conftest runs the command
    itself), in this process: a second of start-up instead of several on busy cores."""
    app = create_app(TestingConfig, DATABASE_URL=database_url)
    with app.app_context():
        load_text(text, source="two_switches.yaml")
        db.engine.dispose()


@pytest.fixture(scope="module")
def pair(template_db, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("two_switches")
    name = f"{PREFIX}_two_switches"
    database_url = create_database(name, template=template_db)
    carriers = {k: harness.free_port() for k in ("a", "one")}
    _provision(database_url, provisioning(carriers))
    db = psycopg2.extensions.parse_dsn(database_url)

    switches = []
    for index in range(2):
        ports = {k: harness.free_port() for k in ("customers", "carriers", "esl")}
        # Each switch is configured as docs/scaling-switches.md says: the same database
        # settings, its own SIP, RTP and event-socket ports (here: one host; in
        # production, one machine each with the shipped ports).
        switches.append(harness.Switch(harness.prefix(), workdir / f"fs{index + 1}", harness.switch_settings(
            db_host=db.get("host", "127.0.0.1"), db_port=db.get("port", "5432"), db_name=name,
            sip_domain=SIP_DOMAIN, ports=ports, esl_password=f"pair-secret-{index + 1}", rtp_ports=100)))
    sipp = harness.Sipp(workdir)
    try:
        sipp.uas("uas_carrier.xml", carriers["a"])
        sipp.uas("uas_carrier.xml", carriers["one"])
        _in_parallel([lambda s=s: s.start(timeout=45) for s in switches])
        yield Pair(switches, sipp, database_url, workdir)
    finally:
        sipp.stop_all()
        _in_parallel([s.stop for s in switches])      # a shutdown takes seconds: both at once
        if not os.environ.get("KEEP_SWITCH_DB"):
            drop_database(name)


def _in_parallel(actions) -> None:
    """Runs each action in a thread of its own; raises the first error once all are done."""
    errors: list[BaseException] = []

    def run(action):
        try:
            action()
        except BaseException as error:            # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _finish(pair, calls):
    return [pair.sipp.uac_result(call, timeout=30) for call in calls]


def test_customer_max_calls_counts_the_calls_of_both_switches(pair):
    """max_calls 2: one call on each switch, and the third is refused (486,
    too_many_calls) whichever switch it reaches; once they end, calls go through again."""
    calls = [pair.held_call(0, "33100000001", PAIR_IP), pair.held_call(1, "33100000002", PAIR_IP)]
    pair.wait_holds("pair", 2)
    refusals = pair.refusals((0, PAIR_IP), (1, PAIR_IP))
    assert [r.final for r in refusals] == [486, 486], [r.codes for r in refusals]
    pair.hang_up_all()
    assert [(r.returncode, r.final) for r in _finish(pair, calls)] == [(0, 200), (0, 200)]
    harness.wait_for(lambda: pair.holds("pair") == 0, 10, what="the holds released")
    assert pair.call(1, "33100000003", PAIR_IP).final == 200
    cdrs = pair.wait_cdrs("pair", 5)
    assert sorted(c["billing_reject_reason"] or "" for c in cdrs) == ["", "", "", "too_many_calls", "too_many_calls"]
    assert sorted(pair.switch_of(c) for c in cdrs if c["billing_reject_reason"]) == [0, 1]


def test_endpoint_max_calls_counts_the_calls_of_both_switches(pair):
    """Endpoint line-one allows one call: busy on switch 1, it is refused on switch 2,
    while the customer's other endpoint still calls through switch 2."""
    first = pair.held_call(0, "33100000011", LINE_IP)
    pair.wait_holds("lines", 1)
    assert pair.refused(1, LINE_IP).final == 486
    other = pair.call(1, "33100000012", LINE_TWO_IP, talk_ms=300)
    assert other.final == 200
    pair.hang_up_all()
    assert pair.sipp.uac_result(first, timeout=30).final == 200
    reasons = [(c["destination_number"], c["billing_reject_reason"]) for c in pair.wait_cdrs("lines", 3)]
    assert ("33123456789", "too_many_calls") in reasons


def test_funds_for_three_holds_give_three_calls_over_both_switches_then_402(pair):
    """0.12 at 0.60/min with quotas of 4 s: three holds of 0.04. Two calls on switch 1
    and one on switch 2 hold everything, the next is refused with 402 on either switch,
    the re-authorizations find nothing left, and the three calls cost exactly 0.12."""
    calls = [pair.call(0, "33100000021", FUNDED_IP, scenario="uac_expect_bye.xml", background=True),
             pair.call(1, "33100000022", FUNDED_IP, scenario="uac_expect_bye.xml", background=True),
             pair.call(0, "33100000023", FUNDED_IP, scenario="uac_expect_bye.xml", background=True)]
    pair.wait_holds("funded", 3)
    refusals = pair.refusals((1, FUNDED_IP), (0, FUNDED_IP))   # at once: the calls end 4 s after answer
    assert [r.final for r in refusals] == [402, 402], [r.codes for r in refusals]
    assert [r.final for r in _finish(pair, calls)] == [200, 200, 200]
    harness.wait_for(lambda: pair.holds("funded") == 0, 10, what="the holds released")
    answered = [c for c in pair.wait_cdrs("funded", 5) if c["billsec"]]
    assert len(answered) == 3
    assert {c["hangup_cause"] for c in answered} == {"ALLOTTED_TIMEOUT"}
    assert sorted(pair.switch_of(c) for c in answered) == [0, 0, 1]
    assert sum(c["sell_amount"] for c in answered) == Decimal("0.12")
    assert pair.balance("funded") == Decimal("0")


def test_quotas_are_re_authorized_on_both_switches_from_the_same_funds(pair):
    """0.16: sixteen seconds of credit for two calls, one on each switch, each granted
    4 s at set-up and 4 s more by re-authorization on its own switch, then nothing:
    together exactly the sixteen seconds (with funds counted per switch, each call would
    have talked sixteen)."""
    offsets = [s.log_size() for s in pair.switches]
    calls = [pair.call(0, "33100000031", SHARED_IP, scenario="uac_expect_bye.xml", background=True, timeout=40),
             pair.call(1, "33100000032", SHARED_IP, scenario="uac_expect_bye.xml", background=True, timeout=40)]
    assert [r.final for r in _finish(pair, calls)] == [200, 200]
    harness.wait_for(lambda: pair.holds("shared") == 0, 10, what="the holds released")
    for switch, offset in zip(pair.switches, offsets):
        assert "credit granted up to 8 s" in switch.log_since(offset)
    cdrs = pair.wait_cdrs("shared", 2)
    assert len(cdrs) == 2 and {c["hangup_cause"] for c in cdrs} == {"ALLOTTED_TIMEOUT"}
    assert sorted(pair.switch_of(c) for c in cdrs) == [0, 1]
    assert [c["held_seconds"] for c in cdrs] == [8, 8]
    assert sum(c["sell_amount"] for c in cdrs) == Decimal("0.16")
    assert pair.balance("shared") == Decimal("0")


def test_gateway_channel_limit_is_counted_per_switch(pair):
    """gw_one allows one channel, counted by each switch's `limit hash`: with a call on
    it through switch 1, switch 2 still sends a call there, and only switch 1 sends its
    next call to the next route (gw_a). Two switches: up to two calls on gw_one."""
    first = pair.held_call(0, "3353000001", WIDE_IP)
    usage = "limit_usage hash billing_gateways gw_one"
    harness.wait_for(lambda: pair.switches[0].api(usage).strip() == "1", 10, what="the first call on gw_one")
    second = pair.held_call(1, "3353000002", WIDE_IP)
    harness.wait_for(lambda: pair.switches[1].api(usage).strip() == "1", 10, what="the second call on gw_one")
    third = pair.call(0, "3353000003", WIDE_IP, talk_ms=300)
    assert third.final == 200
    pair.hang_up_all()
    assert [r.final for r in _finish(pair, [first, second])] == [200, 200]
    gateways = {c["destination_number"]: (c["billing_gateway"], pair.switch_of(c))
                for c in pair.wait_cdrs("wide", 3) if c["destination_number"].startswith("3353")}
    assert gateways == {"3353000001": ("gw_one", 0), "3353000002": ("gw_one", 1), "3353000003": ("gw_a", 0)}


@pytest.fixture()
def half_of_each_gateway(pair):
    """billing_gateway_limit_share=50 on both switches, as docs/scaling-switches.md
    configures two switches sharing carriers (global_setvar: the scripts read it on
    every call, like a `configure` + reloadxml)."""
    for switch in pair.switches:
        switch.api("global_setvar billing_gateway_limit_share=50")
    yield
    for switch in pair.switches:
        switch.api("global_setvar billing_gateway_limit_share=")


def test_with_a_share_of_50_two_switches_keep_a_gateway_within_its_limit(pair, half_of_each_gateway):
    """gw_two allows two channels; each of the two switches takes one: a call on each
    switch fills it, and the next call on either switch goes to the next route."""
    usage = "limit_usage hash billing_gateways gw_two"
    calls = []
    for index, number in enumerate(("3356000001", "3356000002")):
        calls.append(pair.held_call(index, number, WIDE_IP))
        harness.wait_for(lambda i=index: pair.switches[i].api(usage).strip() == "1", 10,
                         what=f"a call on gw_two through switch {index + 1}")
    assert pair.call(1, "3356000003", WIDE_IP, talk_ms=300).final == 200
    assert pair.call(0, "3356000004", WIDE_IP, talk_ms=300).final == 200
    pair.hang_up_all()
    assert [r.final for r in _finish(pair, calls)] == [200, 200]
    gateways = {c["destination_number"]: (c["billing_gateway"], pair.switch_of(c))
                for c in pair.wait_cdrs("wide", 7) if c["destination_number"].startswith("3356")}
    assert gateways == {"3356000001": ("gw_two", 0), "3356000002": ("gw_two", 1),
                        "3356000003": ("gw_a", 1), "3356000004": ("gw_a", 0)}
