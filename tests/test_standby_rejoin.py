"""The operator's failover procedure of docs/scaling-failover.md on clusters of the test's
own: a crashed primary whose last commits never reached the standby is brought back, after
the standby's promotion, as a standby of the new primary with pg_rewind -- its diverged
commits discarded, the new primary's writes streamed to it."""
from __future__ import annotations

import shutil

import pytest

from tests import pgcluster

pytestmark = pytest.mark.skipif(pgcluster.server_programs() is None,
                                reason="PostgreSQL's server programs (initdb) are not installed")


def test_crashed_primary_rejoins_as_standby_of_the_promoted_one():
    work = pgcluster.workdir()
    clusters = []
    try:
        old = pgcluster.Cluster.create(work)
        clusters.append(old)
        old.one("CREATE TABLE calls (n int PRIMARY KEY)")
        old.one("INSERT INTO calls VALUES (1)")
        new = old.standby(work)
        clusters.append(new)
        old.wait_replayed(new)
        # The standby stops receiving; the old primary goes on writing, then crashes: its
        # timeline diverges from what the standby will continue.
        new.one("ALTER SYSTEM SET primary_conninfo = ''")
        new.one("SELECT pg_reload_conf()")
        old.one("INSERT INTO calls SELECT generate_series(1000, 1999)")
        old.crash()
        new.promote()
        new.one("INSERT INTO calls VALUES (2)")

        old.rejoin(new)

        new.one("INSERT INTO calls VALUES (3)")
        new.wait_replayed(old)
        assert old.one("SELECT pg_is_in_recovery()") is True
        assert old.one("SELECT array_agg(n ORDER BY n)::text FROM calls") == "{1,2,3}"
    finally:
        for cluster in clusters:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
