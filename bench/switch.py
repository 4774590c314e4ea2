"""Calls per second through the real switch: sipp customers -> FreeSWITCH 1.10.12 with the
project's configuration (freeswitch/configure) -> route.lua -> PostgreSQL, sipp carriers.

    .venv/bin/python bench/switch.py [--rates 20,50,80,100,120] [--seconds 30] [--talk-ms 1000]
                                     [--sps 1000] [--log-level warning] [--switches 1]

Needs the shared FreeSWITCH build installed (FREESWITCH_PREFIX, `make test` installs it
into /opt/freeswitch) and DATABASE_URL (a server; the database bench_switch is created).
Prints, per offered rate: calls answered / refused (503, the switch's admission) /
failed, set-up time (INVITE to 200) p50 / p99, CPU of FreeSWITCH and of PostgreSQL
(all of the server's processes: run it on a quiet machine), the most database
connections the switch held, and the CDRs inserted and rated in the step.
--sps sets sessions-per-second (default: far above the offered rates, to find where
the switch saturates); docs/freeswitch.md, "Capacity and overload", has the figures.

--baseline (on by default; --no-baseline to skip) runs each step twice: first as a bare
bridge ("bare": the same switch, profiles, ACL, sipp and carrier, but a dialplan
extension that bridges 99<number> straight to the carrier, no Lua, no database), then
billed; "FS x bare" is the billed call's FreeSWITCH CPU over the bare one's, measured
in the same run: what billing costs the switch, apart from what any call costs it.

--switches N starts N FreeSWITCH processes on the same database (ports of their own,
as docs/scaling-switches.md configures them) and splits each offered rate evenly
between them, one sipp per switch: the rates are totals, so runs with 1 and 2 switches
compare at equal load. Then "FS %core" is the sum of all switches, and the route_call/s
and CDRs/s columns are what the one database served from all of them in the step.
"BE ms/call" is the CPU of the database backends the switches were connected to, per
call (route_call, re-authorizations, the CDR insert and its billing, the directory and
gateway lookups), sampled per backend so it stays meaningful on a shared server where
"PG %core" counts everyone's work.
"""
from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dataset import recreate_database  # noqa: E402
from tests.switch import harness  # noqa: E402

DB_NAME = "bench_switch"
PROVISIONING = """\
currency: EUR
settings: {{sip_domain: sip.bench.example, max_call_seconds: 3600}}
weights: [{{name: fixed}}]
permissions: [{{name: standard, weights: [fixed]}}]
destinations: [{{prefix: "33", name: France, weight: fixed}}]
ratecards:
  - name: retail
    rates: [{{prefix: "33", rate: "0.0100", increment: "1/1"}}]
providers:
  - name: carrier_a
    gateways: [{{name: gw_a, host: 127.0.0.1, port: {port_a}, max_channels: 10000}}]
    rates: [{{prefix: "33", rate: "0.0050", increment: "1/1"}}]
  - name: carrier_b
    gateways: [{{name: gw_b, host: 127.0.0.1, port: {port_b}, max_channels: 10000}}]
    rates: [{{prefix: "33", rate: "0.0060", increment: "1/1"}}]
customers:
  - name: bulk
    balance: "1000000.00"
    ratecards: [{{name: retail, priority: 1}}]
    endpoints: [{{name: bulk-pbx, auth: ip, ip: 127.0.0.1/32, permission: standard}}]
"""


def provision(url: str, text: str, workdir: Path) -> None:
    path = workdir / "bench.yaml"
    path.write_text(text)
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32))
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "provision", "load", str(path)], cwd=ROOT,
                   env=env, check=True, capture_output=True)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class BackendCpu:
    """CPU of the PostgreSQL backends serving the switches (application_name
    freeswitch_*, in the bench's database only), sampled every 100 ms so backends that
    come and go during a step are counted: the database's cost of the calls even when
    other work shares the server."""

    def __init__(self, url: str):
        self.url, self.first, self.last, self._stop = url, {}, {}, False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self._stop:
                cur.execute("""SELECT pid FROM pg_stat_activity
                                WHERE datname = current_database() AND application_name LIKE 'freeswitch_%%'""")
                for (pid,) in cur.fetchall():
                    used = cpu_seconds([pid])
                    self.first.setdefault(pid, used)
                    self.last[pid] = used
                time.sleep(0.1)
        conn.close()

    def stop(self) -> float:
        self._stop = True
        self._thread.join(5)
        for pid in self.last:                     # a last reading of those still alive
            used = cpu_seconds([pid])
            if used:
                self.last[pid] = used
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


BARE_PREFIX = "99"


class BenchSwitch(harness.Switch):
    """The project's configuration plus one bench-only extension, first in the customers'
    context: 99<number> is bridged straight to carrier A (no Lua, no database), the
    baseline of what a call costs FreeSWITCH without billing."""

    carrier_port: int = 0

    def configure(self):
        super().configure()
        dialplan = self.workdir / "conf" / "dialplan" / "billing.xml"
        text = dialplan.read_text()
        bare = (f'<extension name="bench_bare_bridge"><condition field="destination_number" '
                f'expression="^{BARE_PREFIX}([0-9]+)$">'
                f'<action application="set" data="hangup_after_bridge=true"/>'
                f'<action application="bridge" data="sofia/carriers/$1@127.0.0.1:{self.carrier_port}"/>'
                f'</condition></extension>\n    <extension name="billing_route">')
        if text.count('<extension name="billing_route">') != 1:
            raise RuntimeError("dialplan/billing.xml changed: the bench cannot add its bare extension")
        dialplan.write_text(text.replace('<extension name="billing_route">', bare, 1))


def load_all(workdir: Path, targets: list[str], rate: float, seconds: float, talk_ms: int,
             number: str = "33123456789") -> harness.LoadResult:
    """`rate` calls per second in all, split evenly over the switches (one sipp each, at
    the same time); the results added up."""
    results: list[harness.LoadResult] = []
    share = rate / len(targets)
    threads = [threading.Thread(target=lambda t=t: results.append(
        harness.load(workdir, t, number, share, seconds, talk_ms))) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(results) != len(targets):
        raise RuntimeError("a sipp load failed (see above)")
    return harness.LoadResult(sum(r.offered for r in results), sum(r.answered for r in results),
                              sum(r.refused for r in results), sum(r.failed for r in results),
                              [ms for r in results for ms in r.setup_ms], max(r.seconds for r in results))


def step(url, workdir, targets, fs_pids, rate, args, kind, number, bare_ms=None) -> float:
    """One step of `rate` calls per second to `number`; prints its row and returns
    FreeSWITCH's CPU per answered call (ms)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM billing.fs_cdr")
        last_id = cur.fetchone()[0]
    watch, backends = harness.ConnectionWatch(url, DB_NAME), BackendCpu(url)
    fs_before, pg_before, t0 = cpu_seconds(fs_pids), cpu_seconds(postgres_pids()), time.monotonic()
    result = load_all(workdir, targets, rate, args.seconds, args.talk_ms, number)
    wall = time.monotonic() - t0
    fs_cpu, pg_cpu = cpu_seconds(fs_pids) - fs_before, cpu_seconds(postgres_pids()) - pg_before
    peak, backend_cpu = watch.stop(), backends.stop()
    time.sleep(2)
    with conn.cursor() as cur:
        # route_call/s: calls that reached billing (a CDR with a customer) over the
        # sipp run; CDRs/s: rows rated over the same time (the last ones land up to
        # talk-ms after the last INVITE, inside the run's wall time).
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status = 'rated'), "
                    "count(*) FILTER (WHERE billing_customer_id IS NOT NULL) FROM billing.fs_cdr "
                    "WHERE id > %s", (last_id,))
        cdrs, rated, routed = cur.fetchone()
    conn.close()
    p50, p99 = result.percentile(50), result.percentile(99)
    fs_ms = 1000 * fs_cpu / max(result.answered, 1)
    ratio = f"{fs_ms / bare_ms:9.2f}" if bare_ms else f"{'':>9}"
    print(f"{kind:>6} {rate:5.0f} {result.offered:8d} {result.answered:9d} {result.refused:6d} {result.failed:7d} "
          f"{p50 or 0:7.1f} {p99 or 0:7.1f} {100 * fs_cpu / wall:9.1f} "
          f"{fs_ms:10.2f} {100 * pg_cpu / wall:9.1f} {peak:9d} "
          f"{cdrs:6d} {rated:6d} {routed / wall:8.1f} {rated / wall:7.1f} "
          f"{(f'{1000 * backend_cpu / routed:10.2f}' if routed else f'{chr(45):>10}')} {ratio}", flush=True)
    return fs_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,50,80,100,120")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--talk-ms", type=int, default=1000)
    parser.add_argument("--sps", type=int, default=1000)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--switches", type=int, default=1, help="FreeSWITCH processes on the one database")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="each step first as a bare bridge (no billing), in the same run")
    args = parser.parse_args()
    prefix = harness.prefix()
    if prefix is None:
        sys.exit("FREESWITCH_PREFIX must name an installed FreeSWITCH (make test installs it into /opt/freeswitch)")

    workdir = Path(tempfile.mkdtemp(prefix="bench_switch_"))
    url = recreate_database(DB_NAME)
    ports = {k: harness.free_port() for k in ("a", "b")}
    provision(url, PROVISIONING.format(port_a=ports["a"], port_b=ports["b"]), workdir)
    db = urlsplit(url)
    switches = []
    for index in range(args.switches):
        own = {k: harness.free_port() for k in ("customers", "carriers", "esl")}
        rtp = harness.free_port(2000 // args.switches)
        switches.append(BenchSwitch(prefix, workdir / f"fs{index + 1}", {
            "billing_db_host": db.hostname or "127.0.0.1", "billing_db_port": str(db.port or 5432),
            "billing_db_name": DB_NAME, "billing_db_password": db.password or "unused",
            "billing_sip_domain": "sip.bench.example",
            "billing_sip_ip": "127.0.0.1", "billing_customers_sip_port": str(own["customers"]),
            "billing_carriers_sip_port": str(own["carriers"]), "billing_esl_port": str(own["esl"]),
            "billing_rtp_start_port": str(rtp), "billing_rtp_end_port": str(rtp + 2000 // args.switches - 1),
            "billing_log_level": args.log_level, "billing_calls_per_second": str(args.sps),
            "billing_max_calls": "5000",
        }))
        switches[-1].carrier_port = ports["a"]
    sipp = harness.Sipp(workdir)
    try:
        sipp.uas("uas_carrier.xml", ports["a"])
        sipp.uas("uas_carrier.xml", ports["b"])
        for switch in switches:
            switch.start()
        targets = [f"127.0.0.1:{s.settings['billing_customers_sip_port']}" for s in switches]
        load_all(workdir, targets, 5, 2, args.talk_ms)        # warm-up
        print(f"FreeSWITCH {prefix} x {args.switches}, sessions-per-second {args.sps}, max-db-handles 20, "
              f"{args.talk_ms} ms calls, {args.seconds:.0f} s per step, log level {args.log_level}")
        print(f"{'kind':>6} {'CPS':>5} {'offered':>8} {'answered':>9} {'503':>6} {'failed':>7} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'FS %core':>9} {'FS ms/call':>10} {'PG %core':>9} {'DB conns':>9} {'CDRs':>6} {'rated':>6} "
              f"{'route/s':>8} {'CDRs/s':>7} {'BE ms/call':>10} {'FS x bare':>9}")
        fs_pids = [s.process.pid for s in switches]
        for rate in (float(r) for r in args.rates.split(",")):
            bare_ms = None
            if args.baseline:
                bare_ms = step(url, workdir, targets, fs_pids, rate, args, "bare", BARE_PREFIX + "33123456789")
                time.sleep(max(2.0, args.talk_ms / 1000))
            step(url, workdir, targets, fs_pids, rate, args, "billed", "33123456789", bare_ms)
    finally:
        sipp.stop_all()
        for switch in switches:
            switch.stop()


if __name__ == "__main__":
    main()
