"""Read-only pages from a REAL streaming standby (portal/replica.py, docs/scaling-replica.md).

One primary with the billing schema and one standby (tests/pgcluster.py) for the whole
module: the two-customer world of the self-care tests, an admin and API tokens are
committed on the primary and replayed on the standby. A page proves it read the
replica by what it does NOT show: with the standby's replay paused, a call committed on
the primary is missing from the page (and the badge shows the lag), then appears once
replay resumes. The primary serves the page when the standby is stopped, too far
behind, unresponsive, or has not replayed the reader's own change -- and says so.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import shutil
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import g
from sqlalchemy import event

from portal import create_app, dbmigrate
from portal.apitokens import services as tokens
from portal.config import TestingConfig
from portal.extensions import db
from tests import factories
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD, login
from tests.pgcluster import Cluster, server_programs, workdir
from tests.selfcare.conftest import A_EMAIL, assert_no_b, build_world, insert_cdr

pytestmark = pytest.mark.skipif(server_programs() is None,
                                reason="PostgreSQL's server programs (initdb, pg_basebackup) are not installed")

_destinations = itertools.count(1)


@pytest.fixture(scope="module")
def clusters():
    parent = workdir()
    primary = Cluster.create(parent)
    standby = None
    try:
        primary.one("CREATE DATABASE billing")
        dbmigrate.upgrade(primary.url("billing"))
        standby = primary.standby(parent)
        yield SimpleNamespace(primary=primary, standby=standby)
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def site(clusters):
    """The portal on the primary with DATABASE_REPLICA_URL on the standby, its data
    committed and replayed."""
    app = create_app(TestingConfig, DATABASE_URL=clusters.primary.url("billing"),
                     DATABASE_REPLICA_URL=clusters.standby.url("billing"), REPLICA_RETRY_SECONDS=1)
    with app.app_context():
        world = build_world()
        factories.user(ADMIN_EMAIL, ADMIN_PASSWORD, role="admin")
        _row, staff_token = tokens.issue("replica test read", "read", customer_id=None, expires_at=None, actor="tests")
        _row, customer_token = tokens.issue("replica test customer", "customer", customer_id=world.a.customer.id,
                                            expires_at=None, actor="tests")
        ids = SimpleNamespace(a=world.a.customer.id, a_endpoint=world.a.sip.id,
                              b=world.b.customer.id, b_endpoint=world.b.sip.id)
        db.session.commit()
    clusters.primary.wait_replayed(clusters.standby)
    yield SimpleNamespace(app=app, ids=ids, staff_token=staff_token, customer_token=customer_token, **vars(clusters))
    with app.app_context():
        db.engine.dispose()
        app.extensions["billing_replica"].engine.dispose()


def new_call(site, customer: str = "a") -> str:
    """A call committed on the primary now; returns its (unique) destination number."""
    number = f"3377{next(_destinations):07d}"
    with site.app.app_context():
        now = db.session.execute(db.text("SELECT now()")).scalar_one()
        insert_cdr(SimpleNamespace(id=getattr(site.ids, customer)),
                   SimpleNamespace(id=getattr(site.ids, f"{customer}_endpoint")),
                   number, now - timedelta(seconds=30), 20, "0.020000", prefix="33")
        db.session.commit()
    return number


@contextlib.contextmanager
def replay_paused(site, seconds_behind: float = 0.0):
    """The standby receives WAL but does not replay it; `seconds_behind` seconds pass
    before the body, so the last replayed commit is at least that old."""
    site.standby.one("SELECT pg_wal_replay_pause()")
    try:
        time.sleep(seconds_behind)
        yield
    finally:
        site.standby.one("SELECT pg_wal_replay_resume()")
        site.primary.wait_replayed(site.standby)


def wait_received(site) -> None:
    """Until the standby has received (not necessarily replayed) all the primary wrote."""
    lsn = site.primary.one("SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 30
    while not site.standby.one("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (lsn,)):
        assert time.monotonic() < deadline, "the standby did not receive the primary's WAL"
        time.sleep(0.05)


def admin(site):
    client = site.app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def customer_a(site):
    client = site.app.test_client()
    login(client, A_EMAIL, CUSTOMER_PASSWORD)
    return client


def badge(response) -> str:
    """The data-source badge of a page ('' when it has none)."""
    text = response.get_data(as_text=True)
    start = text.find("data-data-source=")
    return text[start:text.find("</span>", start)] if start >= 0 else ""


# ------------------------------------------------------------------------------ pages


def test_a_call_shows_on_the_replica_page_after_replay_with_the_lag_badge(site):
    client = admin(site)
    with replay_paused(site, seconds_behind=2.2):
        number = new_call(site)
        wait_received(site)
        page = client.get("/admin/cdrs")
        assert page.status_code == 200
        assert number not in page.get_data(as_text=True), "the page read the primary, not the replica"
        assert page.headers["X-Data-Source"] == "replica"
        assert float(page.headers["X-Data-Lag"]) >= 2
        assert 'data-data-source="replica"' in badge(page) and " s behind" in badge(page), badge(page)
    page = client.get("/admin/cdrs")
    assert number in page.get_data(as_text=True)
    assert page.headers["X-Data-Source"] == "replica"
    assert float(page.headers["X-Data-Lag"]) < 2    # replayed all it received: an idle primary is 0 behind
    assert "up to date" in badge(page) or " s behind" in badge(page)


def test_an_idle_primary_is_not_lag(site):
    """Nothing committed for seconds: the replica has replayed all it received and is 0
    behind, although its last replayed transaction is seconds old."""
    client = admin(site)     # signing in commits on the primary
    site.primary.wait_replayed(site.standby)
    time.sleep(2.5)
    page = client.get("/admin/cdrs")
    assert page.headers["X-Data-Source"] == "replica"
    assert float(page.headers["X-Data-Lag"]) < 1 and "Replica, up to date" in badge(page), badge(page)


@pytest.mark.parametrize("path", ["/admin/cdrs/export.csv", "/admin/reports.csv"])
def test_csv_downloads_stream_from_the_replica(site, path):
    """The CSV rows are read after the view returned (a second replica connection)."""
    client = admin(site)
    with replay_paused(site):
        number = new_call(site)
        wait_received(site)
        before = client.get(path)
        assert before.status_code == 200 and before.headers["X-Data-Source"] == "replica"
        rows_before = before.get_data(as_text=True)
    after = client.get(path)
    assert after.headers["X-Data-Source"] == "replica"
    if "cdrs" in path:
        assert number not in rows_before and number in after.get_data(as_text=True)
    else:   # one more call in the report's total
        def calls(text):
            return next(int(r["calls"]) for r in csv.DictReader(io.StringIO(text)) if r["day"] == "TOTAL")
        assert calls(after.get_data(as_text=True)) == calls(rows_before) + 1


@pytest.mark.parametrize("path", ["/admin/dashboard", "/admin/reports", "/admin/cdrs/totals"])
def test_dashboard_reports_and_totals_read_the_replica(site, path):
    response = admin(site).get(path)
    assert response.status_code == 200
    assert response.headers["X-Data-Source"] == "replica"


def test_pages_that_show_writes_stay_on_the_primary(site):
    client = admin(site)
    for path in ("/admin/customers", f"/admin/customers/{site.ids.a}"):
        response = client.get(path)
        assert response.status_code == 200 and "X-Data-Source" not in response.headers, path
        assert badge(response) == ""
    assert "X-Data-Source" not in customer_a(site).get("/my/ledger").headers


def test_a_replica_too_far_behind_falls_back_to_the_primary_and_says_so(site):
    client = admin(site)
    replica = site.app.extensions["billing_replica"]
    with replay_paused(site, seconds_behind=2.2):
        number = new_call(site)
        wait_received(site)
        replica.max_lag = 1
        try:
            page = client.get("/admin/cdrs")
        finally:
            replica.max_lag = site.app.config["REPLICA_MAX_LAG_SECONDS"]
        assert number in page.get_data(as_text=True), "the primary serves the page"
        assert page.headers["X-Data-Source"] == "primary"
        assert page.headers["X-Data-Fallback"].startswith("replica ") and "behind" in page.headers["X-Data-Fallback"]
        assert 'data-data-source="primary"' in badge(page) and "behind" in badge(page)


def test_a_stopped_replica_falls_back_to_the_primary_and_says_so(site):
    client = admin(site)
    site.standby.stop()
    try:
        number = new_call(site)
        t0 = time.monotonic()
        page = client.get("/admin/cdrs")
        first = time.monotonic() - t0
        assert page.status_code == 200
        assert number in page.get_data(as_text=True)
        assert page.headers["X-Data-Source"] == "primary"
        assert page.headers["X-Data-Fallback"] == "replica unreachable"
        assert "Primary: replica unreachable" in badge(page)
        t0 = time.monotonic()
        again = client.get("/admin/reports")
        assert again.headers["X-Data-Fallback"] == "replica unreachable"
        print(f"stopped replica: first page {first * 1000:.0f} ms, next {1000 * (time.monotonic() - t0):.0f} ms")
    finally:
        site.standby.start()
    site.primary.wait_replayed(site.standby)
    time.sleep(site.app.config["REPLICA_RETRY_SECONDS"] + 0.1)   # the failure is forgotten
    page = client.get("/admin/cdrs")
    assert page.headers["X-Data-Source"] == "replica" and number in page.get_data(as_text=True)


def test_a_dead_pooled_connection_is_replaced_without_a_fallback(site):
    client = admin(site)
    assert client.get("/admin/cdrs").headers["X-Data-Source"] == "replica"   # a connection in the pool
    site.standby.one("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'billing-portal-replica'", dbname="billing")
    page = client.get("/admin/cdrs")
    assert page.status_code == 200 and page.headers["X-Data-Source"] == "replica"


def test_a_replica_lost_during_the_view_is_replaced_by_the_primary(site):
    """The standby's backend dies after the lag check, while the view runs (here: killed
    at the view's first ORM query to the primary): the view runs again on the
    primary, the page says so, and the replica rests for REPLICA_RETRY_SECONDS."""
    client = admin(site)
    armed = []

    def kill_replica_backends(*_args):
        if armed and getattr(g.get("data_source"), "replica", False):   # after the lag check
            armed.clear()
            site.standby.one("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = 'billing-portal-replica'", dbname="billing")

    with site.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", kill_replica_backends)
    try:
        number = new_call(site)
        armed.append(True)
        page = client.get("/admin/cdrs")
    finally:
        event.remove(engine, "before_cursor_execute", kill_replica_backends)
    assert not armed, "the replica's backend was not killed during the view"
    assert page.status_code == 200 and number in page.get_data(as_text=True)
    assert page.headers["X-Data-Source"] == "primary"
    assert page.headers["X-Data-Fallback"] == "replica failed during the request"
    assert client.get("/admin/cdrs").headers["X-Data-Fallback"] == "replica unreachable"   # resting
    time.sleep(site.app.config["REPLICA_RETRY_SECONDS"] + 0.1)
    assert client.get("/admin/cdrs").headers["X-Data-Source"] == "replica"


def test_an_unresponsive_replica_costs_one_connect_timeout_then_nothing(clusters):
    """A replica host that accepts TCP and never answers (a hung server): the first page
    waits REPLICA_CONNECT_TIMEOUT, the next ones do not wait at all."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        # sslmode=disable: with libpq's default (prefer) it would wait twice, TLS then plain
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/billing?sslmode=disable"
        app = create_app(TestingConfig, DATABASE_URL=clusters.primary.url("billing"), DATABASE_REPLICA_URL=url,
                         REPLICA_CONNECT_TIMEOUT=2, REPLICA_RETRY_SECONDS=30)
        client = app.test_client()
        login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        timings = []
        for _ in range(3):
            t0 = time.monotonic()
            page = client.get("/admin/cdrs")
            timings.append(time.monotonic() - t0)
            assert page.status_code == 200 and page.headers["X-Data-Fallback"] == "replica unreachable"
        print("unresponsive replica, page times (s):", [round(t, 3) for t in timings])
        assert 1.5 < timings[0] < 3.5, timings
        assert max(timings[1:]) < 1, timings
        with app.app_context():
            db.engine.dispose()


def test_the_readers_own_change_is_read_from_the_primary_until_replayed(site):
    """A POST of the reader (here: self care's alert settings) with the standby behind:
    the next calls page is the primary's, until the replica has replayed past it."""
    client = customer_a(site)
    with replay_paused(site):
        form = client.get("/my/settings")
        assert form.status_code == 200
        saved = client.post("/my/settings", data={"low_balance_alert": "120", "email": "billing@alpha.example"})
        assert saved.status_code in (200, 302)
        page = client.get("/my/cdrs")
        assert page.headers["X-Data-Source"] == "primary"
        assert page.headers["X-Data-Fallback"] == "your last change is not on the replica yet"
    time.sleep(1.2)
    assert client.get("/my/cdrs").headers["X-Data-Source"] == "replica"


# -------------------------------------------------------------------- a customer's view


def test_a_customer_sees_only_their_own_calls_through_the_replica(site):
    mine, theirs = new_call(site, "a"), new_call(site, "b")
    site.primary.wait_replayed(site.standby)
    client = customer_a(site)
    page = client.get("/my/cdrs")
    assert page.status_code == 200 and page.headers["X-Data-Source"] == "replica"
    text = page.get_data(as_text=True)
    assert mine in text and theirs not in text
    assert_no_b(text, "/my/cdrs from the replica")
    download = client.get("/my/cdrs.csv")
    assert download.status_code == 200 and download.headers["X-Data-Source"] == "replica"
    assert mine in download.get_data(as_text=True) and theirs not in download.get_data(as_text=True)
    assert_no_b(download.get_data(), "/my/cdrs.csv from the replica")


# ------------------------------------------------------------------------------- the API


def _api(site, token: str, path: str, **headers):
    return site.app.test_client().get(path, headers={"Authorization": f"Bearer {token}", **headers})


def test_api_cdr_reads_come_from_the_replica(site):
    with replay_paused(site, seconds_behind=1.2):
        number = new_call(site)
        wait_received(site)
        listing = _api(site, site.staff_token, "/api/v1/cdrs?limit=1000")
        assert listing.status_code == 200 and listing.headers["X-Data-Source"] == "replica"
        assert float(listing.headers["X-Data-Lag"]) >= 1
        assert number not in {row["destination"] for row in listing.get_json()["items"]}
    listing = _api(site, site.staff_token, "/api/v1/cdrs?limit=1000")
    rows = {row["destination"]: row for row in listing.get_json()["items"]}
    assert number in rows and listing.headers["X-Data-Source"] == "replica"
    one = _api(site, site.staff_token, f"/api/v1/cdrs/{rows[number]['id']}")
    assert one.status_code == 200 and one.headers["X-Data-Source"] == "replica"
    totals = _api(site, site.staff_token, "/api/v1/cdrs/totals")
    assert totals.status_code == 200 and totals.headers["X-Data-Source"] == "replica"
    download = _api(site, site.staff_token, "/api/v1/cdrs", Accept="text/csv")
    assert download.status_code == 200 and download.headers["X-Data-Source"] == "replica"
    assert number in download.get_data(as_text=True)


def test_a_customer_token_reads_only_its_own_calls_through_the_replica(site):
    mine, theirs = new_call(site, "a"), new_call(site, "b")
    site.primary.wait_replayed(site.standby)
    listing = _api(site, site.customer_token, "/api/v1/cdrs?limit=1000")
    assert listing.status_code == 200 and listing.headers["X-Data-Source"] == "replica"
    numbers = {row["destination"] for row in listing.get_json()["items"]}
    assert mine in numbers and theirs not in numbers
    assert_no_b(listing.get_data(), "API /cdrs of a customer token from the replica")
    theirs_id = site.primary.one("SELECT id FROM billing.cdr WHERE destination = %s", (theirs,), dbname="billing")
    assert _api(site, site.customer_token, f"/api/v1/cdrs/{theirs_id}").status_code == 404
    # The ledger is the primary's: balances are never read behind.
    assert "X-Data-Source" not in _api(site, site.customer_token, f"/api/v1/customers/{site.ids.a}/ledger").headers


def test_without_a_replica_nothing_changes(clusters, site):
    app = create_app(TestingConfig, DATABASE_URL=clusters.primary.url("billing"))
    assert "billing_replica" not in app.extensions
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get("/admin/cdrs")
    assert page.status_code == 200
    assert "X-Data-Source" not in page.headers and badge(page) == ""
    with app.app_context():
        db.engine.dispose()
