"""PostgreSQL clusters of a test's own: a primary, a streaming standby, promotion, a crash.

The tests of replication and failover (issue #14) cannot stop the server the rest of the
suite uses, so they build their own on spare ports with the server's own programs
(``initdb``, ``pg_basebackup``, ``pg_ctl``), as docs/scaling.md tells an operator to:

    primary = Cluster.create(workdir)            # initdb + start, replication allowed
    standby = primary.standby(workdir)           # pg_basebackup -R + start (streaming)
    primary.crash()                              # pg_ctl stop -m immediate
    standby.promote()                            # pg_ctl promote, waits for read-write
    primary.rejoin(standby)                      # pg_rewind -R + start: the old primary follows

The programs run as the ``postgres`` system user when the suite runs as root (initdb
refuses root). Without PostgreSQL's server programs on this machine (``DATABASE_URL``
pointing at another host, no local server package) the tests that need a cluster are
skipped with a reason: :func:`server_programs` answers None.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2


def server_programs() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    for d in reversed(dirs):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def workdir() -> Path:
    """A directory the postgres user may write (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="billing-pg-"))
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


class Cluster:
    """One PostgreSQL cluster on 127.0.0.1:`port` with its data in `data`."""

    def __init__(self, data: Path, port: int, bin_dir: Path):
        self.data, self.port, self.bin = data, port, bin_dir

    # -- building ----------------------------------------------------------------------
    @classmethod
    def create(cls, parent: Path, *, port: int | None = None, settings: dict[str, str] | None = None) -> "Cluster":
        """initdb a primary that allows streaming replication to 127.0.0.1, and start it."""
        bin_dir = server_programs()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server programs (initdb) are not installed")
        data = parent / f"primary-{port or 'x'}-{time.monotonic_ns()}"
        cluster = cls(data, port or spare_port(), bin_dir)
        cluster._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{parent}'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "hot_standby": "on",
            "wal_keep_size": "'256MB'",
            "fsync": "off",             # a test cluster: speed over crash safety of the files
            "full_page_writes": "on",
            "wal_log_hints": "on",      # pg_rewind can bring a crashed primary back as a standby
            "shared_buffers": "'32MB'",
            "max_connections": "100",
        }
        conf.update(settings or {})
        with open(data / "postgresql.auto.conf", "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        with open(data / "pg_hba.conf", "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        cluster.start()
        return cluster

    def standby(self, parent: Path, *, port: int | None = None) -> "Cluster":
        """A streaming standby of this cluster (pg_basebackup -R), started and connected."""
        data = parent / f"standby-{time.monotonic_ns()}"
        standby = Cluster(data, port or spare_port(), self.bin)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-D", str(data), "-R", "-X", "stream", "-c", "fast")
        with open(data / "postgresql.auto.conf", "a") as f:
            f.write(f"port = {standby.port}\n")
        standby.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.one("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"):
                return standby
            time.sleep(0.1)
        raise RuntimeError(f"standby on port {standby.port} is not streaming; see {data}/server.log")

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def crash(self) -> None:
        """What a power cut looks like to the clients: every backend gone at once."""
        self.stop("immediate")

    def promote(self, timeout: float = 30.0) -> float:
        """pg_ctl promote; returns the seconds until the cluster accepted writes."""
        t0 = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote")
        while time.monotonic() - t0 < timeout:
            try:
                if self.one("SELECT NOT pg_is_in_recovery()"):
                    return time.monotonic() - t0
            except psycopg2.Error:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"cluster on port {self.port} still in recovery after {timeout} s")

    def rejoin(self, new_primary: "Cluster", timeout: float = 30.0) -> None:
        """Bring this crashed (or stopped) old primary back as a standby of `new_primary`, as
        docs/scaling-failover.md tells an operator to: pg_rewind -R, then start."""
        self.stop("fast")
        self._run("pg_rewind", "--target-pgdata", str(self.data), "--write-recovery-conf",
                  "--source-server", f"host=127.0.0.1 port={new_primary.port} user=postgres dbname=postgres")
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if new_primary.one("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"old primary on port {self.port} is not streaming; see {self.data}/server.log")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)

    # -- use ---------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def one(self, statement: str, params=None, dbname: str = "postgres"):
        conn = psycopg2.connect(self.url(dbname), connect_timeout=3)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement, params)
                if cur.description is None:
                    return None
                row = cur.fetchone()
                return row[0] if row else None
        finally:
            conn.close()

    def wait_replayed(self, standby: "Cluster", timeout: float = 30.0) -> None:
        """Wait until `standby` has replayed everything this primary has written so far."""
        lsn = self.one("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if standby.one("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"standby on port {standby.port} did not replay {lsn} in {timeout} s")

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = _as_postgres() + [str(self.bin / program), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done
