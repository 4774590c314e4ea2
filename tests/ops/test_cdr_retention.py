"""CDR retention (portal/retention): a month archived to gzip CSV + manifest, verified,
its partition dropped; restored identical, all or nothing; refused while the month is
not closed for billing; the command line, the job's selection and the re-rate guard."""
from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from portal.retention import services as rs
from tests import factories
from tests.ops.conftest import insert_cdr

MONTH = date(2024, 3, 1)
T = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)


def _exists(pg, name: str) -> bool:
    with pg.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"billing.{name}",))
        return cur.fetchone()[0] is not None


def _rows(pg) -> list[tuple]:
    """Every column of the month's CDRs, as text, in id order (what 'identical' means)."""
    with pg.cursor() as cur:
        cur.execute("SELECT c::text FROM billing.cdr c WHERE start_stamp >= %s AND start_stamp < %s ORDER BY id",
                    (datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 4, 1, tzinfo=timezone.utc)))
        return cur.fetchall()


def _issue_invoice(pg, customer, period_start=date(2024, 3, 1), period_end=date(2024, 4, 1)):
    with pg.cursor() as cur:
        cur.execute("""INSERT INTO billing.invoices (customer_id, kind, status, number, period_start, period_end,
                                                     currency, tax_rate, customer_name, issued_at)
                       VALUES (%s, 'invoice', 'issued', %s, %s, %s, 'EUR', 0, %s, now())""",
                    (customer.id, f"T-{customer.id}-{period_start}", period_start, period_end, customer.name))


@pytest.fixture()
def month(pg, db_session):
    """March 2024: a partition with 250 CDRs of a customer invoiced for the month, text
    that CSV must carry (commas, quotes, a newline, accents), NULLs and money."""
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.create_cdr_partition(%s)", (MONTH,))
    customer = factories.customer(name="acme")
    db_session.flush()
    for i in range(250):
        insert_cdr(pg, customer_id=customer.id, start_stamp=T + timedelta(minutes=i), billsec=i % 7 * 30,
                   duration=i % 7 * 30 + 3, sell_amount=Decimal("0.012345") * i, cost_amount=Decimal("0.004") * i,
                   caller_id='"Zoë, ventes"\n+33 1' if i == 7 else str(100 + i), gateway=None if i % 2 else "gw_a")
    insert_cdr(pg, customer_id=None, start_stamp=T, billsec=0, duration=4, sell_amount=Decimal(0),
               cost_amount=Decimal(0), hangup_cause="CALL_REJECTED")
    _issue_invoice(pg, customer)
    return customer


def test_archive_writes_a_verified_file_and_manifest_then_drops_the_partition(pg, month, tmp_path):
    before = _rows(pg)
    with pg.cursor() as cur:
        cur.execute("""SELECT count(*), sum(billsec), sum(sell_amount), sum(cost_amount) FROM billing.cdr
                        WHERE start_stamp >= '2024-03-01' AND start_stamp < '2024-04-01'""")
        rows, billsec, sell, cost = cur.fetchone()
    result = rs.archive(pg, MONTH, tmp_path, actor="test")

    assert not _exists(pg, "cdr_2024_03") and _rows(pg) == []
    data, manifest_path = tmp_path / "cdr_2024_03.csv.gz", tmp_path / "cdr_2024_03.manifest.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([manifest_path.name, data.name])   # no .tmp left
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["month"], manifest["rows"], manifest["sum_billsec"]) == ("2024-03", rows, billsec) == \
        ("2024-03", 251, billsec)
    assert Decimal(manifest["sum_sell_amount"]) == sell and Decimal(manifest["sum_cost_amount"]) == cost
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest() == result.sha256
    assert manifest["file_bytes"] == data.stat().st_size and manifest["columns"][0] == "id"
    with gzip.open(data, "rt", encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.startswith(",".join(manifest["columns"]) + "\n") and '"""Zoë, ventes""\n+33 1"' in text
    with pg.cursor() as cur:
        cur.execute("SELECT state, rows, sha256, file_name FROM billing.cdr_archives WHERE month = %s", (MONTH,))
        assert cur.fetchone() == ("archived", 251, result.sha256, data.name)
        cur.execute("SELECT actor, details->>'rows' FROM billing.audit_log WHERE entity = 'cdr_month' "
                    "AND entity_id = '2024-03' AND action = 'archive'")
        assert cur.fetchall() == [("test", "251")]
    assert len(before) == 251


def test_restore_brings_back_identical_rows_and_the_month_can_be_archived_again(pg, month, tmp_path):
    before = _rows(pg)
    rs.archive(pg, MONTH, tmp_path, actor="test")
    result = rs.restore(pg, MONTH, tmp_path, actor="test")

    assert result.figures.rows == 251 and _rows(pg) == before
    with pg.cursor() as cur:
        cur.execute("""SELECT count(*) FROM pg_inherits WHERE inhparent = 'billing.cdr'::regclass
                          AND inhrelid = 'billing.cdr_2024_03'::regclass""")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'billing' AND tablename = 'cdr_2024_03'")
        restored_indexes = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'billing' AND tablename = 'cdr_default'")
        assert restored_indexes == cur.fetchone()[0] >= 5      # every index of billing.cdr, as on any partition
        cur.execute("SELECT state, restored_by FROM billing.cdr_archives WHERE month = %s", (MONTH,))
        assert cur.fetchone() == ("restored", "test")
    listing = {p.label: p for p in rs.partitions(pg, tmp_path)}
    assert listing["2024-03"].state == "restored" and listing["2024-03"].file_present

    again = rs.archive(pg, MONTH, tmp_path, actor="test")     # re-detach later
    assert again.figures.rows == 251 and not _exists(pg, "cdr_2024_03")
    assert {p.label: p.state for p in rs.partitions(pg, tmp_path)}["2024-03"] == "archived"
    rs.restore(pg, MONTH, tmp_path, actor="test")
    assert _rows(pg) == before


def test_dry_run_changes_nothing(pg, month, tmp_path):
    before = _rows(pg)
    result = rs.archive(pg, MONTH, tmp_path / "archive", actor="test", dry_run=True)
    assert result.dry_run and result.figures.rows == 251 and "nothing written" in result.summary()
    assert _exists(pg, "cdr_2024_03") and _rows(pg) == before and not (tmp_path / "archive").exists()
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.cdr_archives")
        assert cur.fetchone()[0] == 0


def _refusal(pg, tmp_path, **kw) -> str:
    before = _rows(pg)
    with pytest.raises(rs.Refused) as refused:
        rs.archive(pg, MONTH, tmp_path, actor="test", **kw)
    assert _exists(pg, "cdr_2024_03") and _rows(pg) == before and list(tmp_path.iterdir()) == []
    return str(refused.value)


def test_a_month_with_an_unrated_call_is_refused(pg, month, tmp_path):
    insert_cdr(pg, customer_id=month.id, start_stamp=T, status="unrated", unrated_reason="no_rate",
               sell_amount=Decimal(0), cost_amount=Decimal(0))
    assert "1 of its calls are unrated" in _refusal(pg, tmp_path)


def test_a_month_with_a_raw_cdr_not_rated_is_refused(pg, month, tmp_path):
    with pg.cursor() as cur:
        cur.execute("ALTER TABLE billing.fs_cdr DISABLE TRIGGER USER")   # a raw row left 'new' (bulk load)
        cur.execute("""INSERT INTO billing.fs_cdr (uuid, caller_id_number, destination_number, start_stamp, end_stamp,
                                                   duration, billsec, hangup_cause)
                       VALUES ('raw-1', '100', '33123', %s, %s, 10, 5, 'NORMAL_CLEARING')""", (T, T + timedelta(seconds=10)))
        cur.execute("ALTER TABLE billing.fs_cdr ENABLE TRIGGER USER")
    assert "1 raw CDRs of the month are not rated" in _refusal(pg, tmp_path)


def test_calls_to_review_are_refused_unless_the_review_is_accepted(pg, month, tmp_path):
    insert_cdr(pg, customer_id=month.id, start_stamp=T, no_hold=True)
    assert "1 calls are to review" in _refusal(pg, tmp_path)
    assert rs.archive(pg, MONTH, tmp_path, actor="test", accept_review=True).figures.rows == 252


def test_a_month_whose_invoices_are_not_issued_is_refused(pg, month, tmp_path):
    other = factories.customer(name="globex")
    insert_cdr(pg, customer_id=other.id, start_stamp=T)
    assert "no issued invoice or statement for the month: globex (2024-03)" in _refusal(pg, tmp_path)


def test_the_last_and_current_months_are_never_archived(pg, db_session, tmp_path):
    with pg.cursor() as cur:
        cur.execute("SELECT date_trunc('month', now())::date - interval '1 month'")
        last = cur.fetchone()[0].date()
        cur.execute("SELECT billing_private.ensure_cdr_partitions(3)")
    for m in (last, (last + timedelta(days=40)).replace(day=1)):
        with pytest.raises(rs.Refused, match="current or the last month"):
            rs.archive(pg, m, tmp_path, actor="test")
    with pytest.raises(rs.RetentionError, match="no partition for 2019-01"):
        rs.archive(pg, date(2019, 1, 1), tmp_path, actor="test")


def test_a_corrupted_archive_refuses_to_restore_and_changes_nothing(pg, month, tmp_path):
    rs.archive(pg, MONTH, tmp_path, actor="test")
    data = tmp_path / "cdr_2024_03.csv.gz"
    good = data.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    data.write_bytes(bytes(damaged))
    with pytest.raises(rs.RetentionError, match="damaged or was replaced.*Nothing was restored"):
        rs.restore(pg, MONTH, tmp_path, actor="test")
    assert not _exists(pg, "cdr_2024_03") and _rows(pg) == []

    # a file replaced together with its manifest is still refused: the database keeps the checksum
    data.write_bytes(gzip.compress(b"id\n"))
    manifest = json.loads((tmp_path / "cdr_2024_03.manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    (tmp_path / "cdr_2024_03.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(rs.RetentionError, match="not the one recorded"):
        rs.restore(pg, MONTH, tmp_path, actor="test")
    data.unlink()
    (tmp_path / "cdr_2024_03.manifest.json").unlink()
    with pytest.raises(rs.RetentionError, match="manifest .* is missing"):
        rs.restore(pg, MONTH, tmp_path, actor="test")
    with pg.cursor() as cur:
        cur.execute("SELECT state FROM billing.cdr_archives WHERE month = %s", (MONTH,))
        assert cur.fetchone()[0] == "archived"
    assert not _exists(pg, "cdr_2024_03")


def test_rows_that_load_as_other_figures_are_refused_all_or_nothing(pg, month, tmp_path):
    """The checksum can match while the database's record does not (a record edited by
    hand): the loaded rows are counted again and the whole restore rolls back."""
    rs.archive(pg, MONTH, tmp_path, actor="test")
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT before_restore")
        cur.execute("UPDATE billing.cdr_archives SET rows = rows + 1 WHERE month = %s", (MONTH,))
    manifest_path = tmp_path / "cdr_2024_03.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["rows"] += 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(rs.RetentionError, match="loads as other figures.*rows 252 != 251"):
        rs.restore(pg, MONTH, tmp_path, actor="test")
    with pg.cursor() as cur:
        cur.execute("ROLLBACK TO SAVEPOINT before_restore")
    assert not _exists(pg, "cdr_2024_03")


def test_re_rating_an_archived_month_is_refused(pg, month, tmp_path, db_session):
    from portal.rerate import services as rerate

    rs.archive(pg, MONTH, tmp_path, actor="test")
    with pytest.raises(rerate.RerateError, match="2024-03 are archived: restore the month first"):
        rerate.create(pg, date(2024, 3, 30), date(2024, 4, 2), None, None, "test")
    rerate.create(pg, date(2024, 4, 1), date(2024, 4, 2), None, None, "test")    # the next month is live


def test_due_months_follow_the_retention_setting(pg, month):
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.create_cdr_partition(%s)", (date.today().replace(day=1) - timedelta(days=200),))
    assert MONTH in rs.due_months(pg, 12)
    assert MONTH not in rs.due_months(pg, 1200) and rs.due_months(pg, 0) == []


def test_command_line_dry_run_archive_listing_and_restore(app, cli, pg, month, tmp_path):
    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    try:
        dry = cli.invoke(args=["billing", "cdr-archive", "--month", "2024-03", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "dry run: would archive 2024-03: 251 CDRs" in dry.output and _exists(pg, "cdr_2024_03")
        done = cli.invoke(args=["billing", "cdr-archive", "--month", "2024-03"])
        assert done.exit_code == 0 and "file verified, partition dropped" in done.output, done.output
        listing = cli.invoke(args=["billing", "cdr-partitions"])
        line = next(l for l in listing.output.splitlines() if l.startswith("2024-03"))
        assert "archived" in line and "251" in line and "cdr_2024_03.csv.gz" in line
        again = cli.invoke(args=["billing", "cdr-archive", "--month", "2024-03"])
        assert again.exit_code == 1 and "already archived" in again.output
        restored = cli.invoke(args=["billing", "cdr-restore", "2024-03"])
        assert restored.exit_code == 0 and "restored 2024-03: 251 CDRs" in restored.output, restored.output
        bad = cli.invoke(args=["billing", "cdr-restore", "2024-13"])
        assert bad.exit_code == 1 and "is not a month" in bad.output
    finally:
        app.config["CDR_ARCHIVE_DIR"] = None


def test_command_line_without_month_archives_what_the_retention_setting_says(app, cli, pg, month, tmp_path):
    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    other = factories.customer(name="globex")
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.create_cdr_partition('2024-02-01')")
        cur.execute("UPDATE billing.settings SET cdr_retention_months = 12")
    insert_cdr(pg, customer_id=other.id, start_stamp=datetime(2024, 2, 3, tzinfo=timezone.utc))  # not invoiced
    try:
        result = cli.invoke(args=["billing", "cdr-archive"])
        assert result.exit_code == 1
        assert "archived 2024-03: 251 CDRs" in result.output
        assert "2024-02 is not archived: 1 customers with calls in it have no issued invoice" in result.output
        assert not _exists(pg, "cdr_2024_03") and _exists(pg, "cdr_2024_02")
    finally:
        app.config["CDR_ARCHIVE_DIR"] = None


# ------------------------------------------------------------------------ the page

def test_the_page_lists_partitions_and_archives_and_restores_a_month(app, admin_client, pg, month, tmp_path):
    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    try:
        page = admin_client.get("/admin/cdr-partitions")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert 'data-month="2024-03" data-state="live"' in html and "251" in html
        assert "/admin/cdr-partitions/2024-03/archive" in html

        done = admin_client.post("/admin/cdr-partitions/2024-03/archive", follow_redirects=True)
        html = done.get_data(as_text=True)
        assert "archived 2024-03: 251 CDRs" in html and 'data-month="2024-03" data-state="archived"' in html
        assert not _exists(pg, "cdr_2024_03") and (tmp_path / "cdr_2024_03.csv.gz").is_file()
        with pg.cursor() as cur:
            cur.execute("SELECT actor, action FROM billing.audit_log WHERE entity = 'cdr_month' ORDER BY id")
            assert cur.fetchall() == [("admin@example.net", "archive"), ("admin@example.net", "archive")]  # request, change

        html = admin_client.post("/admin/cdr-partitions/2024-03/restore", follow_redirects=True).get_data(as_text=True)
        assert "restored 2024-03: 251 CDRs" in html and 'data-month="2024-03" data-state="restored"' in html
        status = admin_client.get(f"/admin/cdr-partitions/tasks/{_last_task(pg)}").get_json()
        assert status["done"] and status["status"] == "done" and status["percent"] == 100
    finally:
        app.config["CDR_ARCHIVE_DIR"] = None


def _last_task(pg) -> int:
    with pg.cursor() as cur:
        cur.execute("SELECT max(id) FROM billing.cdr_archive_tasks")
        return cur.fetchone()[0]


def test_the_page_says_why_a_month_is_refused_and_changes_nothing(app, admin_client, pg, month, tmp_path):
    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    insert_cdr(pg, customer_id=month.id, start_stamp=T, no_hold=True)
    try:
        html = admin_client.post("/admin/cdr-partitions/2024-03/archive", follow_redirects=True).get_data(as_text=True)
        assert "Not archived." in html and "1 calls are to review" in html
        assert _exists(pg, "cdr_2024_03") and list(tmp_path.iterdir()) == []
        html = admin_client.post("/admin/cdr-partitions/2024-03/archive", data={"accept_review": "y"},
                                 follow_redirects=True).get_data(as_text=True)
        assert "archived 2024-03: 252 CDRs" in html
    finally:
        app.config["CDR_ARCHIVE_DIR"] = None


def test_the_retention_setting_is_saved_and_audited(admin_client, pg, db_session):
    response = admin_client.post("/admin/cdr-partitions/retention", data={"months": "36"}, follow_redirects=True)
    assert "older than 36 full months" in response.get_data(as_text=True)
    with pg.cursor() as cur:
        cur.execute("SELECT cdr_retention_months FROM billing.settings")
        assert cur.fetchone()[0] == 36
        cur.execute("SELECT details FROM billing.audit_log WHERE entity = 'settings' ORDER BY id DESC LIMIT 1")
        assert cur.fetchone()[0] == {"cdr_retention_months": [24, 36]}
    html = admin_client.post("/admin/cdr-partitions/retention", data={"months": "-1"},
                             follow_redirects=True).get_data(as_text=True)
    assert "Number must be between 0 and 1200" in html


def test_customers_and_other_staff_get_403(app, client, pg, month, db_session):
    from tests.conftest import CUSTOMER_PASSWORD, login

    factories.user("ops@acme.example", CUSTOMER_PASSWORD, customer=month)
    factories.user("finance@example.net", CUSTOMER_PASSWORD, role="finance")
    for email in ("ops@acme.example", "finance@example.net"):
        login(client, email, CUSTOMER_PASSWORD)
        assert client.get("/admin/cdr-partitions").status_code == 403
        assert client.post("/admin/cdr-partitions/2024-03/archive").status_code == 403
        assert client.post("/admin/cdr-partitions/2024-03/restore").status_code == 403
        assert client.post("/admin/cdr-partitions/retention", data={"months": "1"}).status_code == 403
        client.get("/logout")
    assert _exists(pg, "cdr_2024_03")


def test_archive_and_restore_need_the_csrf_token(app, admin_client, pg, month, tmp_path):
    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert admin_client.post("/admin/cdr-partitions/2024-03/archive").status_code == 400
        assert admin_client.post("/admin/cdr-partitions/2024-03/restore").status_code == 400
        assert admin_client.post("/admin/cdr-partitions/retention", data={"months": "1"}).status_code == 400
        with pg.cursor() as cur:
            cur.execute("SELECT cdr_retention_months FROM billing.settings")
            assert cur.fetchone()[0] == 24
            cur.execute("SELECT count(*) FROM billing.cdr_archive_tasks")
            assert cur.fetchone()[0] == 0
        assert _exists(pg, "cdr_2024_03") and list(tmp_path.iterdir()) == []
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
        app.config["CDR_ARCHIVE_DIR"] = None


def test_a_file_that_does_not_read_back_as_the_partition_keeps_the_partition(pg, month, tmp_path, monkeypatch):
    """Verification happens before the drop: a file whose read-back differs (a full disk
    truncating it, say) leaves the partition, no file and no record."""
    real = rs.file_figures

    def short_by_one(path, columns):
        f = real(path, columns)
        return rs.Figures(f.rows - 1, f.sum_billsec, f.sum_sell_amount, f.sum_cost_amount)

    monkeypatch.setattr(rs, "file_figures", short_by_one)
    before = _rows(pg)
    with pytest.raises(rs.RetentionError, match="does not read back as the partition .*rows 251 != 250"):
        rs.archive(pg, MONTH, tmp_path, actor="test")
    assert _exists(pg, "cdr_2024_03") and _rows(pg) == before and list(tmp_path.iterdir()) == []
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.cdr_archives")
        assert cur.fetchone()[0] == 0


def test_the_monthly_job_archives_due_months_and_reports_refusals(app, pg, month, tmp_path, db_session):
    from portal.jobs import JOBS, run_job

    app.config["CDR_ARCHIVE_DIR"] = str(tmp_path)
    other = factories.customer(name="globex")
    with pg.cursor() as cur:
        cur.execute("SELECT billing_private.create_cdr_partition('2024-02-01')")
        cur.execute("UPDATE billing.settings SET cdr_retention_months = 0")
    insert_cdr(pg, customer_id=other.id, start_stamp=datetime(2024, 2, 3, tzinfo=timezone.utc))   # not invoiced
    try:
        assert JOBS["cdr_archive"].trigger == {"trigger": "cron", "day": 6, "hour": 3, "minute": 45}
        run = run_job("cdr_archive", trigger="test")
        assert run.status == "ok" and "every month is kept" in run.result and _exists(pg, "cdr_2024_03")
        with pg.cursor() as cur:
            cur.execute("UPDATE billing.settings SET cdr_retention_months = 12")
        run = run_job("cdr_archive", trigger="test")
        assert run.status == "error"
        assert "archived 2024-03: 251 CDRs" in run.error and "2024-02 is not archived" in run.error
        assert not _exists(pg, "cdr_2024_03") and _exists(pg, "cdr_2024_02")
        with pg.cursor() as cur:
            cur.execute("SELECT archived_by FROM billing.cdr_archives WHERE month = %s", (MONTH,))
            assert cur.fetchone()[0] == "job:cdr_archive"
    finally:
        app.config["CDR_ARCHIVE_DIR"] = None


def test_a_task_whose_process_stopped_is_marked_failed_but_a_live_one_is_not(pg, month, tmp_path):
    old_task = rs.create_task(pg, MONTH, "archive", "test")
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.cdr_archive_tasks SET status = 'running', created_at = now() - interval '5 minutes'")
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (rs.LOCK_CLASS, rs._lock_key(MONTH)))   # still being worked on
    assert rs.fail_abandoned_tasks(pg) == 0
    with pg.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", (rs.LOCK_CLASS, rs._lock_key(MONTH)))   # the process is gone
    assert rs.fail_abandoned_tasks(pg) == 1
    with pg.cursor() as cur:
        cur.execute("SELECT status, error FROM billing.cdr_archive_tasks WHERE id = %s", (old_task,))
        status, error = cur.fetchone()
    assert status == "failed" and "stopped before it finished" in error
