"""Overload through the real switch: offered twice what it is set to admit, FreeSWITCH
refuses the excess at once with 503 and Retry-After (sessions-per-second,
switch.conf.xml), the calls it admits keep a fast set-up, and its database connections
stay within max-db-handles (docs/freeswitch.md, "Capacity and overload")."""
from __future__ import annotations

import pytest

from tests.switch import harness

pytestmark = [pytest.mark.switch, pytest.mark.skipif(harness.skip_reason() is not None,
                                                     reason=str(harness.skip_reason()))]

CAPACITY = 10            # calls per second admitted for this test (fsctl sps)
MAX_DB_HANDLES = 20      # billing_max_db_handles, the shipped default


@pytest.fixture()
def capacity(tier):
    tier.switch.api(f"fsctl sps {CAPACITY}")
    yield CAPACITY
    tier.switch.api("fsctl sps 30")                         # billing_calls_per_second, the shipped default


def test_twice_the_capacity_is_shed_fast_and_the_admitted_calls_stay_fast(tier, capacity):
    database = tier.database_url.rsplit("/", 1)[1]
    watch = harness.ConnectionWatch(tier.database_url, database)
    last = tier.last_cdr_id()
    result = harness.load(tier.workdir, tier.target, "33123456789", rate=2 * capacity, seconds=20, talk_ms=1000)
    peak = watch.stop()
    assert result.failed == 0, result                      # nothing but answered or 503 with Retry-After
    assert result.refused > result.offered * 0.3, result
    assert result.answered >= capacity * 20 * 0.8, result
    assert result.percentile(99) < 200, result.percentile(99)
    assert 0 < peak <= MAX_DB_HANDLES + 1                   # + mod_cdr_pg_csv's own connection
    # every admitted call was billed, every refused one never reached billing
    harness.wait_for(lambda: tier.one("SELECT count(*) FROM billing.fs_cdr WHERE id > %s", (last,))[0]
                     >= result.answered, 20, what="the CDRs")
    rows = tier.one("""SELECT count(*), count(*) FILTER (WHERE status = 'rated' AND billsec > 0)
                         FROM billing.fs_cdr WHERE id > %s""", (last,))
    assert rows == (result.answered, result.answered)
