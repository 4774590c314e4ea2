"""The real-switch tier: FreeSWITCH 1.10.12 (../shared/freeswitch, installed by
scripts/test.sh) with the project's own configuration, a committed test database
provisioned with the real `provision load` command, sipp customers and carriers.

One switch serves the whole tier (starting one takes ~4 s); tests keep to their own
customers, numbers and carriers so they do not need a fresh one each.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest

from tests.conftest import PREFIX, ROOT, create_database, drop_database
from tests.switch import harness


SIP_DOMAIN = "sip.test.example"
SIP_USER, SIP_PASSWORD = "acme100", "s3cret-pass"

# Who calls from where: every IP-authenticated customer has an address of its own on
# the loopback network, so sipp can be each of them.
ACME_IP = "127.0.0.1"          # prepaid, 100.00
CLOSED_IP = "127.0.0.2"        # disabled by the test after the ACL was loaded
BROKE_IP = "127.0.0.3"         # no money
BUSY_IP = "127.0.0.4"          # max_calls 1
THRIFTY_IP = "127.0.0.5"       # endpoint spend limit 0.01 a month
GONE_IP = "127.0.0.6"          # endpoint moved away by the test after the ACL was loaded
TIMED_IP = "127.0.0.7"         # 0.03: three seconds at 0.60/min
QUOTA_IP = "127.0.0.8"         # 0.10: ten seconds, two and a half quotas of 4 s
TOPUP_IP = "127.0.0.9"         # 0.06: six seconds, then topped up during the call


def provisioning(ports: dict[str, int]) -> str:
    def gw(name, port, max_channels=30):
        return f"{{name: {name}, host: 127.0.0.1, port: {port}, max_channels: {max_channels}, priority: 1}}"

    return textwrap.dedent(f"""\
        currency: EUR
        settings: {{sip_domain: {SIP_DOMAIN}, max_call_seconds: 600}}
        weights: [{{name: fixed}}, {{name: premium}}]
        permissions:
          - {{name: standard, weights: [fixed]}}
        destinations:
          - {{prefix: "33", name: France, weight: fixed}}
          - {{prefix: "3389", name: France Premium, weight: premium}}
          - {{prefix: "44", name: United Kingdom, weight: fixed}}
          - {{prefix: "49", name: Germany, weight: fixed}}
          - {{prefix: "39", name: Italy, weight: fixed}}
        ratecards:
          - name: retail
            rates:
              - {{prefix: "33", rate: "0.60", increment: "1/1"}}
              - {{prefix: "3389", rate: "1.00", increment: "1/1"}}
              - {{prefix: "49", rate: "0.60", increment: "1/1"}}
              - {{prefix: "39", rate: "0.01", increment: "1/1"}}
        providers:
          - name: carrier_a
            gateways: [{gw("gw_a", ports["a"])}]
            rates: [{{prefix: "33", rate: "0.10", increment: "1/1"}}]
          - name: carrier_b
            gateways: [{gw("gw_b", ports["b"])}]
            rates: [{{prefix: "33", rate: "0.20", increment: "1/1"}}]
          - name: carrier_503
            gateways: [{gw("gw_503", ports["503"])}]
            rates: [{{prefix: "3350", rate: "0.05", increment: "1/1"}}]
          - name: carrier_486
            gateways: [{gw("gw_486", ports["486"])}]
            rates: [{{prefix: "3351", rate: "0.05", increment: "1/1"}}]
          - name: carrier_480
            gateways: [{gw("gw_480", ports["480"])}]
            rates: [{{prefix: "3352", rate: "0.05", increment: "1/1"}}]
          - name: carrier_one
            gateways: [{gw("gw_one", ports["one"], max_channels=1)}]
            rates: [{{prefix: "3353", rate: "0.05", increment: "1/1"}}]
          - name: carrier_bye
            gateways: [{gw("gw_bye", ports["bye"])}]
            rates: [{{prefix: "3354", rate: "0.05", increment: "1/1"}}]
          - name: carrier_dear
            gateways: [{gw("gw_dear", ports["b"])}]
            rates: [{{prefix: "39", rate: "0.50", increment: "1/1"}}]
        customers:
          - name: acme
            billing: prepaid
            balance: "100.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints:
              - {{name: acme-pbx, auth: ip, ip: {ACME_IP}/32, permission: standard}}
              - {{name: acme-100, auth: sip, username: {SIP_USER}, password: "{SIP_PASSWORD}",
                 permission: standard}}
          - name: closed
            balance: "10.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: closed-pbx, auth: ip, ip: {CLOSED_IP}/32, permission: standard}}]
          - name: broke
            balance: "0"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: broke-pbx, auth: ip, ip: {BROKE_IP}/32, permission: standard}}]
          - name: busy
            balance: "10.00"
            max_calls: 1
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: busy-pbx, auth: ip, ip: {BUSY_IP}/32, permission: standard}}]
          - name: thrifty
            balance: "10.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: thrifty-pbx, auth: ip, ip: {THRIFTY_IP}/32, permission: standard,
                          spend_limit_month: "0.01"}}]
          - name: gone
            balance: "10.00"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: gone-pbx, auth: ip, ip: {GONE_IP}/32, permission: standard}}]
          - name: timed
            balance: "0.03"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: timed-pbx, auth: ip, ip: {TIMED_IP}/32, permission: standard}}]
          - name: quota
            balance: "0.10"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: quota-pbx, auth: ip, ip: {QUOTA_IP}/32, permission: standard}}]
          - name: topup
            balance: "0.06"
            ratecards: [{{name: retail, priority: 1}}]
            endpoints: [{{name: topup-pbx, auth: ip, ip: {TOPUP_IP}/32, permission: standard}}]
        """)


_RUN_SECRET_KEY = secrets.token_hex(32)


def flask(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The portal's command line, as an operator runs it."""
    # create_app refuses a missing, short or published key (issue 12): one of this run only
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY=os.environ.get("SECRET_KEY") or _RUN_SECRET_KEY)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=check, timeout=120)


class Tier:
    """What a test of the tier needs: the switch, sipp, the database, the proxy."""

    def __init__(self, switch, sipp, proxy, database_url, ports, workdir):
        self.switch, self.sipp, self.proxy = switch, sipp, proxy
        self.database_url, self.ports, self.workdir = database_url, ports, workdir
        self.target = f"127.0.0.1:{ports['customers']}"

    def sql(self, statement: str, params=None, fetch: bool = True):
        conn = psycopg2.connect(self.database_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if fetch and cur.description else None
        finally:
            conn.close()

    def one(self, statement: str, params=None):
        rows = self.sql(statement, params)
        return rows[0] if rows else None

    def balance(self, customer: str) -> Decimal:
        return self.one("SELECT balance FROM billing.customers WHERE name = %s", (customer,))[0]

    def call(self, number: str, *, source_ip: str = ACME_IP, scenario: str = "uac_ip.xml", talk_ms: int = 500,
             extra: list[str] | None = None, timeout: float = 30, background: bool = False):
        return self.sipp.uac(scenario, self.target, number, source_ip=source_ip,
                             extra=["-d", str(talk_ms), *(extra or [])], timeout=timeout, background=background)

    def cdr(self, call_id_number: str | None = None, *, since_id: int = 0, timeout: float = 10.0):
        """The newest CDR row after since_id (mod_cdr_pg_csv writes it after the call ends)."""
        def newest():
            return self.sql("""SELECT * FROM billing.fs_cdr WHERE id > %s ORDER BY id DESC LIMIT 1""",
                            (since_id,))
        harness.wait_for(newest, timeout, step=0.1, what="the call's CDR")
        conn = psycopg2.connect(self.database_url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT * FROM billing.fs_cdr WHERE id > %s ORDER BY id DESC LIMIT 1", (since_id,))
                names = [d.name for d in cur.description]
                return dict(zip(names, cur.fetchone()))
        finally:
            conn.close()

    def last_cdr_id(self) -> int:
        return self.one("SELECT coalesce(max(id), 0) FROM billing.fs_cdr")[0]

    def holds(self, customer: str | None = None) -> int:
        if customer is None:
            return self.one("SELECT count(*) FROM billing.call_holds")[0]
        return self.one("""SELECT count(*) FROM billing.call_holds h JOIN billing.customers c
                             ON c.id = h.customer_id WHERE c.name = %s""", (customer,))[0]

    def wait_no_holds(self, customer: str, timeout: float = 10.0):
        harness.wait_for(lambda: self.holds(customer) == 0, timeout, step=0.1, what=f"{customer}'s holds released")

    def import_spool(self) -> str:
        """docs/freeswitch.md, "When the database was down" (tier: spool), as written:
        `billing import-spool` of the file FreeSWITCH keeps open, resuming after what an
        earlier run billed."""
        spool = self.switch.spool_dir / "cdr-spool.sql"
        if not spool.exists() or spool.stat().st_size == 0:
            return ""
        output = self.switch.shell("spool", {"DATABASE_URL": self.database_url,
                                             "SECRET_KEY": os.environ.get("SECRET_KEY") or _RUN_SECRET_KEY},
                                   replace={"/var/log/freeswitch": str(self.switch.workdir / "log")})
        assert "error(s)" in output and " 0 error(s)" in output, output
        return output

    def global_var(self, name: str, value: str | None):
        assert value is None or "=" not in value, "global_setvar cannot set a value holding '='"
        if value is None:
            self.switch.api(f"global_setvar {name}=")
        else:
            self.switch.api(f"global_setvar {name}={value}")


def _start_carriers(sipp: harness.Sipp, ports: dict[str, int]) -> None:
    sipp.uas("uas_carrier.xml", ports["a"])
    sipp.uas("uas_carrier.xml", ports["b"])
    sipp.uas("uas_carrier.xml", ports["one"])
    sipp.uas_reply(503, "Service Unavailable", ports["503"])
    sipp.uas_reply(486, "Busy Here", ports["486"])
    sipp.uas_reply(480, "Temporarily Unavailable", ports["480"])
    sipp.uas("uas_bye.xml", ports["bye"], extra=["-d", "1500"])   # the callee hangs up after 1.5 s


@pytest.fixture(scope="session")
def tier(template_db, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("switch")
    name = f"{PREFIX}_switch"
    database_url = create_database(name, template=template_db)
    ports = {k: harness.free_port() for k in ("customers", "carriers", "esl", "a", "b", "503", "486", "480",
                                               "one", "bye", "new")}
    flask(database_url, "provision", "load", str(_write(workdir / "provision.yaml", provisioning(ports))))

    server = urlsplit(database_url)
    proxy = harness.DbProxy(server.hostname or "127.0.0.1", server.port or 5432)
    settings = harness.switch_settings(db_host="127.0.0.1", db_port=str(proxy.port), db_name=name,
                                       sip_domain=SIP_DOMAIN, ports=ports, esl_password="tier-secret")
    switch = harness.Switch(harness.prefix(), workdir / "fs", settings)
    sipp = harness.Sipp(workdir)
    try:
        _start_carriers(sipp, ports)
        switch.start()
        yield Tier(switch, sipp, proxy, database_url, ports, workdir)
    finally:
        sipp.stop_all()
        switch.stop()
        proxy.close()
        if not os.environ.get("KEEP_SWITCH_DB"):
            drop_database(name)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture()
def restore_switch_globals(tier):
    """Undo global_setvar changes a test makes (values without "=": global_setvar reads a
    second "=" as a conditional set)."""
    changed: list[tuple[str, str | None]] = []

    def set_(name, value):
        changed.append((name, tier.switch.global_var(name)))
        tier.global_var(name, value)

    yield set_
    for name, value in reversed(changed):
        tier.global_var(name, value)


@pytest.fixture()
def database_back(tier):
    """Whatever a test does to the proxy, the database is reachable again afterwards."""
    yield tier.proxy
    tier.proxy.restore()
    time.sleep(0.2)
