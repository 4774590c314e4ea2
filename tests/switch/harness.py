"""The real-switch tier's tools: a FreeSWITCH 1.10.12 process started with the project's
own configuration (installed by freeswitch/configure, as docs/freeswitch.md says), sipp
as customers and carriers, and a TCP proxy in front of PostgreSQL so a test can take the
database away from the switch without touching the server others use.

Nothing here knows about billing: tests/switch/conftest.py wires it to a test database.
"""
from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from portal.switch.esl import EslClient, EslError

ROOT = Path(__file__).resolve().parents[2]
SHARED_BUILD = ROOT.parent / "shared" / "freeswitch"
SIPP_DIR = ROOT / "freeswitch" / "test" / "sipp"
TEST_SIPP_DIR = Path(__file__).resolve().parent / "sipp"


GUIDE = ROOT / "docs" / "freeswitch.md"


def guide_block(name: str) -> str:
    """The shell block docs/freeswitch.md marks `<!-- tier: NAME -->`: the tier runs the
    guide's own commands, so the guide cannot drift from what works."""
    text = GUIDE.read_text()
    match = re.search(r"<!-- tier: " + re.escape(name) + r" -->\s*```sh\n(.*?)```", text, re.S)
    if not match:
        raise LookupError(f"docs/freeswitch.md has no block marked tier: {name}")
    return "\n".join(line.strip() if line.startswith("  ") else line for line in match.group(1).splitlines())


def skip_reason() -> str | None:
    """Why the tier cannot run here, or None."""
    if prefix() is None:
        if not SHARED_BUILD.is_dir():
            return f"real-switch tier skipped: {SHARED_BUILD} does not exist"
        return "real-switch tier skipped: FREESWITCH_PREFIX does not name an installed build (make test sets it)"
    if not have_sipp():
        return "real-switch tier skipped: sipp is not installed (make test installs it)"
    return None


def prefix() -> Path | None:
    """Where scripts/test.sh installed the shared build (FREESWITCH_PREFIX), if anywhere."""
    value = os.environ.get("FREESWITCH_PREFIX")
    if value and (Path(value) / "bin" / "freeswitch").exists():
        return Path(value)
    return None


# ------------------------------------------------------------------------------ ports

_taken: set[int] = set()


# Below Linux's ephemeral range (32768-60999 by default), so no outgoing connection
# takes a port between the moment it is chosen and the moment its server binds it.
PORT_RANGE = (20000, 32000)


def switch_settings(*, db_host: str, db_port: str, db_name: str, sip_domain: str, ports: dict[str, int],
                    esl_password: str, rtp_ports: int = 200, **more: str) -> dict[str, str]:
    """The billing_vars.xml settings of a test switch on 127.0.0.1: its database, its
    customers / carriers / ESL ports (ports["customers"], ["carriers"], ["esl"]), a
    range of `rtp_ports` free RTP ports, log level info; `more` adds or overrides."""
    rtp = free_port(rtp_ports)
    settings = {
        "billing_db_host": db_host, "billing_db_port": db_port, "billing_db_name": db_name,
        "billing_db_password": os.environ.get("BILLING_FREESWITCH_PASSWORD", "unused-with-trust-auth"),
        "billing_sip_domain": sip_domain, "billing_sip_ip": "127.0.0.1",
        "billing_customers_sip_port": str(ports["customers"]), "billing_carriers_sip_port": str(ports["carriers"]),
        "billing_rtp_start_port": str(rtp), "billing_rtp_end_port": str(rtp + rtp_ports - 1),
        "billing_esl_port": str(ports["esl"]), "billing_esl_password": esl_password, "billing_log_level": "info",
    }
    settings.update(more)
    return settings


def free_port(span: int = 1) -> int:
    """A port (or the first of `span` consecutive ports) free on 127.0.0.1 for UDP and TCP."""
    import random

    for _ in range(500):
        base = random.randrange(PORT_RANGE[0], PORT_RANGE[1] - span)
        if any(p in _taken for p in range(base, base + span)):
            continue
        if all(_bindable(p) for p in range(base, base + span)):
            _taken.update(range(base, base + span))
            return base
    raise RuntimeError("no free port range on 127.0.0.1")


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def wait_for(predicate, timeout: float, step: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# ------------------------------------------------------------------------------ database proxy

class DbProxy:
    """127.0.0.1:port -> the PostgreSQL server, with switches to take the database away.

    * ``cut()``: every open connection is closed and new ones are refused (server down);
    * ``blackhole()``: connections are accepted and bytes swallowed, nothing comes back
      (a server that stopped answering);
    * ``restore()``: back to forwarding.
    """

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode = "forward"
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = False
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The old listener may linger until the accept thread's poll on it returns.
        deadline = time.monotonic() + 2
        while True:
            try:
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    s.close()
                    raise
                time.sleep(0.05)
        s.listen(128)
        s.settimeout(0.1)
        self._listener = s

    def _accept_loop(self):
        while not self._stop:
            listener = self._listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                mode = self.mode
                self._conns.append(client)
            if mode == "blackhole":
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _swallow(self, client):
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, a: socket.socket, b: socket.socket):
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if self.mode == "forward":
                        (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def _drop_all(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self):
        """The server went away: connections closed, new ones refused."""
        with self._lock:
            self.mode = "cut"
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._drop_all()

    def blackhole(self):
        """The server stopped answering: existing connections hang, new ones too."""
        with self._lock:
            self.mode = "blackhole"     # the pumps drop what they read from now on
        if self._listener is None:
            self._listen()

    def restore(self):
        with self._lock:
            self.mode = "forward"
        self._drop_all()
        if self._listener is None:
            self._listen()

    def close(self):
        self._stop = True
        self.cut()


# ------------------------------------------------------------------------------ FreeSWITCH

@dataclass
class Switch:
    """One FreeSWITCH process with the project's configuration in `workdir`."""

    prefix: Path
    workdir: Path
    settings: dict[str, str]
    process: subprocess.Popen | None = None
    esl_port: int = 0
    esl_password: str = "ClueCon"
    extra_args: list[str] = field(default_factory=list)

    DIRS = ("conf", "log", "run", "db", "tmp", "cache", "sounds", "recordings", "storage", "certs",
            "htdocs", "grammar", "scripts")

    # The values the guide's configure block takes from the environment.
    GUIDE_SETTINGS = {"DB_HOST": "billing_db_host", "DB_PORT": "billing_db_port", "DB_NAME": "billing_db_name",
                      "DB_PASSWORD": "billing_db_password", "SIP_DOMAIN": "billing_sip_domain",
                      "SIP_IP": "billing_sip_ip"}

    def configure(self):
        """docs/freeswitch.md step 3, as written (tier: configure), then configure again with
        what only a test needs (ports, ESL, log level), as the guide says to change settings."""
        env = dict(os.environ, FS_CONF=str(self.workdir / "conf"), FS_SCRIPTS=str(self.workdir / "scripts"))
        missing = [name for name in self.GUIDE_SETTINGS.values() if name not in self.settings]
        if missing:
            raise ValueError(f"the guide's configure step needs {', '.join(missing)}")
        env.update({var: self.settings[name] for var, name in self.GUIDE_SETTINGS.items()})
        subprocess.run(["bash", "-euc", guide_block("configure")], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True)
        rest = [f"{k}={v}" for k, v in self.settings.items() if k not in self.GUIDE_SETTINGS.values()]
        if rest:
            subprocess.run([str(ROOT / "freeswitch" / "configure"), "--conf", str(self.workdir / "conf"), *rest],
                           check=True, capture_output=True, text=True)

    def fs_cli(self, block: str) -> list[str]:
        """Runs the `fs_cli -x "..."` lines of a guide block over the event socket."""
        return [self.api(command) for command in re.findall(r'fs_cli -x "([^"]+)"', guide_block(block))]

    def shell(self, block: str, env: dict[str, str], replace: dict[str, str] | None = None) -> str:
        """Runs a guide block with bash, fs_cli and flask as on an operator's switch host."""
        shims = self.workdir / "shims"
        shims.mkdir(exist_ok=True)
        (shims / "fs_cli").write_text(f"#!/bin/sh\nexec {self.prefix / 'bin' / 'fs_cli'} -H 127.0.0.1 "
                                      f"-P {self.esl_port} -p {self.esl_password} \"$@\"\n")
        (shims / "flask").write_text(f"#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m flask \"$@\"\n")
        for shim in shims.iterdir():
            shim.chmod(0o755)
        text = guide_block(block)
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        run_env = dict(os.environ, **env, PATH=f"{shims}:{os.environ['PATH']}")
        done = subprocess.run(["bash", "-euc", text], env=run_env, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"guide block {block} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    @property
    def log_file(self) -> Path:
        return self.workdir / "log" / "freeswitch.log"

    @property
    def spool_dir(self) -> Path:
        return self.workdir / "log" / "cdr-pg-csv"

    def command(self) -> list[str]:
        d = self.workdir
        args = [str(self.prefix / "bin" / "freeswitch"), "-nf", "-nc", "-nonat",
                "-base", str(d), "-mod", str(self.prefix / "lib" / "freeswitch" / "mod")]
        for name in self.DIRS:
            flag = {"scripts": "-scripts", "tmp": "-temp"}.get(name, "-" + name)
            args += [flag, str(d / name)]
        return args + self.extra_args

    def start(self, timeout: float = 30.0):
        for name in self.DIRS:
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        self.configure()
        self.esl_port = int(self.settings["billing_esl_port"])
        self.esl_password = self.settings.get("billing_esl_password", "ClueCon")
        out = open(self.workdir / "stdout.txt", "wb")
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.workdir)
        try:
            wait_for(self._profiles_running, timeout, step=0.2, what="FreeSWITCH and both SIP profiles")
        except TimeoutError:
            self.stop()
            raise RuntimeError("FreeSWITCH did not start:\n" + self.startup_report()) from None

    def startup_report(self) -> str:
        text = (self.workdir / "stdout.txt").read_text(errors="replace")[-3000:]
        if self.log_file.exists():
            text += "\n--- freeswitch.log (errors) ---\n" + "\n".join(
                line for line in self.log_file.read_text(errors="replace").splitlines()
                if "[ERR]" in line or "[CRIT]" in line)[-3000:]
        return text

    def _profiles_running(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("FreeSWITCH exited during start-up:\n" + self.startup_report())
        try:
            ready = "is ready" in self.api("status")      # every module loaded, the ACL too
            status = self.api("sofia status")
        except EslError:
            return False
        return ready and status.count("RUNNING") >= 2

    def api(self, command: str, timeout: float = 10.0) -> str:
        with EslClient("127.0.0.1", self.esl_port, self.esl_password, timeout=timeout) as esl:
            return esl.api(command)

    def global_var(self, name: str) -> str | None:
        """A global variable, None when unset (global_getvar then answers nothing, which
        the event socket reports as "-ERR no reply")."""
        value = self.api(f"global_getvar {name}").strip()
        return None if value in ("", "-ERR no reply") else value

    def log_since(self, offset: int) -> str:
        with open(self.log_file, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.api("fsctl shutdown", timeout=3)
            except EslError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


# ------------------------------------------------------------------------------ sipp

def scenario(name: str) -> Path:
    """A scenario of the guide (freeswitch/test/sipp) or of the tests (tests/switch/sipp)."""
    for folder in (SIPP_DIR, TEST_SIPP_DIR):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(name)


@dataclass
class SippResult:
    returncode: int
    codes: list[int]              # final and provisional responses the UAC received, in order
    seconds: float
    messages: str
    stdout: str

    @property
    def final(self) -> int | None:
        finals = [c for c in self.codes if c >= 200]
        return finals[0] if finals else None

    def header(self, name: str) -> list[str]:
        return re.findall(rf"^{re.escape(name)}:\s*(.*?)\s*$", self.messages, re.M | re.I)


_STATUS = re.compile(r"^SIP/2\.0 (\d{3}) ", re.M)


def _received_codes(trace: str) -> list[int]:
    """Status codes of the responses received, from sipp's -trace_msg log."""
    codes = []
    for block in re.split(r"^-{5,}.*$", trace, flags=re.M):
        if "message received" in block:
            codes += [int(c) for c in _STATUS.findall(block)]
    return codes


def _received_messages(trace: str) -> str:
    return "\n".join(block for block in re.split(r"^-{5,}.*$", trace, flags=re.M) if "message received" in block)


@dataclass
class Sipp:
    """sipp as customers' PBXs and carriers, every instance on ports of its own."""

    workdir: Path
    running: list[subprocess.Popen] = field(default_factory=list)

    def _ports(self) -> list[str]:
        return ["-p", str(free_port()), "-mp", str(free_port(4)), "-cp", str(free_port())]

    def uac(self, scenario_name: str, target: str, service: str, *, source_ip: str = "127.0.0.1",
            extra: list[str] | None = None, timeout: float = 60.0, background: bool = False):
        """One call from `source_ip` to `target` dialling `service`. Blocks until it ends
        (or returns the Popen with background=True; finish it with uac_result)."""
        stem = f"uac_{time.monotonic_ns()}"
        trace = self.workdir / f"{stem}_messages.log"
        args = ["sipp", "-sf", str(scenario(scenario_name)), "-s", service, "-i", source_ip,
                *self._ports(), "-m", "1", "-l", "1", "-nostdin", "-trace_msg", "-message_file", str(trace),
                "-trace_err", "-error_file", str(self.workdir / f"{stem}_errors.log"),
                "-timeout", f"{int(timeout)}s", "-timeout_error", *(extra or []), target]
        started = time.monotonic()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=self.workdir)
        proc.trace_path, proc.started = trace, started
        if background:
            return proc
        return self.uac_result(proc, timeout)

    def uac_result(self, proc, timeout: float = 60.0) -> SippResult:
        try:
            stdout, _ = proc.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        seconds = time.monotonic() - proc.started
        trace = proc.trace_path.read_text(errors="replace") if proc.trace_path.exists() else ""
        return SippResult(proc.returncode, _received_codes(trace), seconds, _received_messages(trace), stdout)

    def uas_reply(self, code: int, reason: str, port: int) -> int:
        """A carrier refusing every call with `code` (sipp reads response codes when it
        loads a scenario, so each code gets its own copy of uas_reply.xml)."""
        text = scenario("uas_reply.xml").read_text().replace("[reply_code] [reply_text]", f"{code} {reason}")
        path = self.workdir / f"uas_reply_{code}.xml"
        path.write_text(text)
        return self.uas(str(path), port)

    def uas(self, scenario_name: str, port: int, *, keys: dict[str, str] | None = None,
            extra: list[str] | None = None) -> int:
        """A carrier listening on 127.0.0.1:port (runs until stop_all); returns its pid."""
        path = Path(scenario_name) if Path(scenario_name).is_absolute() else scenario(scenario_name)
        args = ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(port),
                "-mp", str(free_port(4)), "-cp", str(free_port()), "-nostdin", "-bg"]
        for k, v in (keys or {}).items():
            args += ["-key", k, v]
        args += extra or []
        # -bg forks and prints the daemon's pid.
        out = subprocess.run(args, capture_output=True, text=True, cwd=self.workdir, timeout=10)
        pids = re.findall(r"PID=\[(\d+)\]", out.stdout + out.stderr)
        if not pids:
            raise RuntimeError(f"sipp UAS did not start: {out.stdout}{out.stderr}")
        pid = int(pids[0])
        self.running.append(pid)
        wait_for(lambda: not _bindable_udp(port), 5, what=f"sipp UAS on port {port}")
        return pid

    def stop_all(self):
        for pid in self.running:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        self.running.clear()


@dataclass
class LoadResult:
    offered: int
    answered: int
    refused: int                  # 503 with Retry-After (the switch's admission)
    failed: int                   # anything else
    setup_ms: list[float]         # INVITE -> 200 of the answered calls
    seconds: float

    def percentile(self, p: float) -> float | None:
        if not self.setup_ms:
            return None
        ordered = sorted(self.setup_ms)
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def load(workdir: Path, target: str, service: str, rate: float, seconds: float, talk_ms: int = 1000,
         source_ip: str = "127.0.0.1", limit: int = 5000) -> LoadResult:
    """sipp offering `rate` calls per second for `seconds` (tests/switch/sipp/uac_load.xml)."""
    run = workdir / f"load_{time.monotonic_ns()}"
    run.mkdir(parents=True)
    total = max(1, int(rate * seconds))
    path = scenario("uac_load.xml")
    args = ["sipp", "-sf", str(path), "-s", service, "-i", source_ip, "-p", str(free_port()),
            "-mp", str(free_port(4)), "-cp", str(free_port()), "-r", str(rate), "-m", str(total),
            "-l", str(limit), "-d", str(talk_ms), "-nostdin", "-trace_rtt", "-rtt_freq", "1",
            "-trace_counts", "-trace_err", "-timeout", f"{int(seconds + talk_ms / 1000 + 60)}s", target]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=run, capture_output=True, text=True, timeout=seconds + talk_ms / 1000 + 90)
    elapsed = time.monotonic() - started
    counts = {}
    for counts_file in run.glob("*_counts.csv"):
        lines = [line for line in counts_file.read_text().splitlines() if line.strip()]
        header, last = lines[0].split(";"), lines[-1].split(";")
        counts = dict(zip(header, last))
    def count(suffix: str) -> int:
        return sum(int(v) for k, v in counts.items() if k.endswith(suffix) and v.strip().isdigit())
    refused = count("_503_Recv")
    answered = sum(int(v) for k, v in counts.items() if k.endswith("_200_Recv") and v.strip().isdigit()
                   and k.split("_")[0] == min((kk.split("_")[0] for kk in counts if kk.endswith("_200_Recv")),
                                              key=int))
    setup = []
    for rtt_file in run.glob("*_rtt.csv"):
        for line in rtt_file.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    setup.append(float(parts[1]))
                except ValueError:
                    pass
    failed = max(total - answered - refused, 0)
    if not counts:
        raise RuntimeError(f"sipp load produced no counts: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return LoadResult(total, answered, refused, failed, setup, elapsed)


class ConnectionWatch:
    """The most connections the switch holds to a database (application_name
    freeswitch_route / freeswitch_cdr, billing_vars.xml), sampled every 200 ms."""

    def __init__(self, database_url: str, database: str):
        import psycopg2

        self._connect = lambda: psycopg2.connect(database_url)
        self.database, self.peak, self._stop = database, 0, False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        conn = self._connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self._stop:
                cur.execute("""SELECT count(*) FROM pg_stat_activity
                                WHERE datname = %s AND application_name LIKE 'freeswitch_%%'""", (self.database,))
                self.peak = max(self.peak, cur.fetchone()[0])
                time.sleep(0.2)
        conn.close()

    def stop(self) -> int:
        self._stop = True
        self._thread.join(5)
        return self.peak


def _bindable_udp(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def have_sipp() -> bool:
    return shutil.which("sipp") is not None
