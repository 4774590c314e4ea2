"""`flask billing ...` commands and the mod_cdr_pg_csv spool importer."""
from __future__ import annotations

import uuid as uuidlib
from decimal import Decimal

import pytest

from portal.billing import spool
from tests.billing.conftest import T0, balance, cdr_row, insert_cdr, ledger_sum, one, rated, scalar


def _csv_value(v):
    # what mod_cdr_pg_csv writes: 'text' with ' doubled, null for empty
    if v is None or v == "":
        return "null"
    return "'" + str(v).replace("'", "''") + "'"


def _fs_line(world, billsec, uuid=None, columns=spool.DEFAULT_COLUMNS, caller="1000"):
    row = {
        "uuid": uuid or str(uuidlib.uuid4()), "caller_id_number": caller, "destination_number": "33123456789",
        "start_stamp": "2026-03-10 12:00:00", "answer_stamp": "2026-03-10 12:00:05" if billsec else None,
        "end_stamp": f"2026-03-10 12:{(5 + billsec) // 60:02d}:{(5 + billsec) % 60:02d}", "duration": 5 + billsec,
        "billsec": billsec, "hangup_cause": "NORMAL_CLEARING", "sip_hangup_disposition": "send_bye",
        "billing_customer_id": world.customer.id, "billing_endpoint_id": world.endpoint.id,
        "billing_destination": "33123456789", "billing_sell_prefix": "33", "billing_sell_rate": "0.02",
        "billing_route_seq": 1, "billing_gateway": world.gateway.name, "billing_provider_id": world.provider.id,
        "billing_cost_rate": "0.005",
    }
    return row["uuid"], ",".join(_csv_value(row[c]) for c in columns)


def test_topup_command(cli, pg, world):
    result = cli.invoke(args=["billing", "topup", world.customer.name, "25.50", "--note", "bank transfer 42"])
    assert result.exit_code == 0, result.output
    assert "balance 35.50 EUR" in result.output
    kind, amount, note = one(pg, "SELECT kind, amount, note FROM billing.ledger WHERE customer_id = %s "
                                 "ORDER BY id DESC LIMIT 1", world.customer.id)
    assert (kind, amount, note) == ("topup", Decimal("25.500000"), "bank transfer 42")


@pytest.mark.parametrize("args,message", [
    (["nobody", "5"], "no customer named 'nobody'"),
    (["{name}", "-5"], "must be positive"),
    (["{name}", "1.5e400"], "too large"),
    (["{name}", "abc"], "is not an amount"),
    (["{name}", "0.0000001"], "more than 6 decimal places"),
])
def test_topup_refuses_bad_input(cli, pg, world, args, message):
    args = [a.format(name=world.customer.name) for a in args]
    result = cli.invoke(args=["billing", "topup", "--", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert balance(pg, world.customer.id) == Decimal("10.00")


def test_rerate_command(cli, pg, world):
    row = cdr_row(world, billsec=60)
    insert_cdr(pg, row)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = 0.0500 WHERE ratecard_id = %s AND prefix = '33'", (world.ratecard.id,))
    result = cli.invoke(args=["billing", "rerate", "--from", "2026-03-10", "--to", "2026-03-10",
                              "--customer", world.customer.name])
    assert result.exit_code == 0, result.output
    assert "1 call(s) rated, 0 still unrated, 1 ledger adjustment(s) posted" in result.output
    assert rated(pg, row["uuid"])["sell_amount"] == Decimal("0.050000")
    assert balance(pg, world.customer.id) == Decimal("9.950000") == ledger_sum(pg, world.customer.id)


def test_rerate_command_refuses_bad_dates(cli, db_session):
    result = cli.invoke(args=["billing", "rerate", "--from", "2026-03-10", "--to", "March"])
    assert result.exit_code != 0 and "is not a date" in result.output
    result = cli.invoke(args=["billing", "rerate", "--from", "2026-03-10", "--to", "2026-03-01"])
    assert result.exit_code != 0 and "the period is empty" in result.output


def test_sweep_holds_command(cli, pg, world):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, "
                    "max_duration, destination, expires_at) VALUES "
                    "('stale', %s, %s, 1, 0.02, 60, '33', now() - interval '1 second'), "
                    "('live', %s, %s, 1, 0.02, 60, '33', now() + interval '1 minute')",
                    (world.customer.id, world.endpoint.id) * 2)
    result = cli.invoke(args=["billing", "sweep-holds"])
    assert result.exit_code == 0, result.output
    assert "1 stale hold(s) released" in result.output
    assert scalar(pg, "SELECT string_agg(call_uuid, ',') FROM billing.call_holds") == "live"


def test_import_csv_spool_with_duplicates_and_a_corrupt_line(cli, pg, world, tmp_path):
    u1, l1 = _fs_line(world, 61, caller="O'Brien, J")       # quote and comma inside a value
    u2, l2 = _fs_line(world, 30)
    insert_cdr(pg, cdr_row(world, billsec=61, uuid=u2))      # already delivered before the outage
    _, l3 = _fs_line(world, 10)
    corrupt = "'abc','unterminated"
    _, bad_type = _fs_line(world, 10)
    bad_type = bad_type.replace("'2026-03-10 12:00:00'", "'not a time'", 1)
    path = tmp_path / "cdr-spool.csv"
    path.write_text("\n".join([l1, l2, corrupt, l3, bad_type, l1]) + "\n")
    # explicit column order: the repository's cdr_pg_csv.conf.xml (when present) may differ
    columns = ["--columns", ",".join(spool.DEFAULT_COLUMNS)]
    result = cli.invoke(args=["billing", "import-spool", str(path), *columns])
    assert result.exit_code == 1, result.output
    assert "6 line(s): 2 inserted, 2 duplicate(s) ignored, 2 error(s)" in result.output
    assert "cdr-spool.csv:3: unterminated quoted value" in result.output
    assert "cdr-spool.csv:5: " in result.output
    assert scalar(pg, "SELECT caller_id_number FROM billing.fs_cdr WHERE uuid = %s", u1) == "O'Brien, J"
    assert rated(pg, u1)["sell_amount"] == Decimal("0.040000")
    # billed once each: 0.04 (u1) + 0.04 (u2, delivered live) + 0.02 (l3)
    assert balance(pg, world.customer.id) == Decimal("9.900000")
    # the next run resumes after what was billed; reading it all again bills nothing twice
    again = cli.invoke(args=["billing", "import-spool", str(path), *columns])
    assert "0 line(s): 0 inserted" in again.output and "6 line(s) billed by an earlier run skipped" in again.output
    again = cli.invoke(args=["billing", "import-spool", "--from-start", str(path), *columns])
    assert "2 inserted" not in again.output and "4 duplicate(s) ignored" in again.output
    assert balance(pg, world.customer.id) == Decimal("9.900000")


def test_import_resumes_where_freeswitch_keeps_writing(cli, pg, world, tmp_path):
    """FreeSWITCH keeps cdr-spool.sql open and appends: each run bills the complete lines
    after the previous run's, a line still being written waits, and a new file under the
    same name is read from the top."""
    cols = ",".join(spool.DEFAULT_COLUMNS)
    lines = [f"INSERT INTO billing.fs_cdr ({cols}) VALUES ({_fs_line(world, 61)[1]});" for _ in range(4)]
    path = tmp_path / "cdr-spool.sql"
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:40])          # the third is half written
    first = cli.invoke(args=["billing", "import-spool", str(path)])
    assert "2 line(s): 2 inserted" in first.output, first.output
    with path.open("a") as f:
        f.write(lines[2][40:] + "\n" + lines[3] + "\n")
    second = cli.invoke(args=["billing", "import-spool", str(path)])
    assert "2 line(s): 2 inserted" in second.output and "2 line(s) billed by an earlier run skipped" in second.output
    assert balance(pg, world.customer.id) == Decimal("9.840000")          # four calls at 0.04
    path.write_text(lines[3] + "\n")                                      # rotated by hand: another file
    third = cli.invoke(args=["billing", "import-spool", str(path)])
    assert "1 line(s): 0 inserted, 1 duplicate(s) ignored" in third.output, third.output


def test_import_sql_spool_never_executes_the_text(cli, pg, world, tmp_path):
    cols = spool.DEFAULT_COLUMNS
    u1, v1 = _fs_line(world, 61)
    u2, v2 = _fs_line(world, 0)
    lines = [
        f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({v1});",
        f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({v2});",
        f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({v1});",                # duplicate
        "DELETE FROM billing.ledger;",                                                      # not an INSERT
        f"INSERT INTO billing.fs_cdr (uuid, status) VALUES ('x', 'rated');",              # column not allowed
        f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({v1}); DROP TABLE billing.cdr;",
    ]
    path = tmp_path / "cdr-spool.sql"
    path.write_text("\n".join(lines) + "\n")
    result = cli.invoke(args=["billing", "import-spool", str(path)])
    assert "6 line(s): 2 inserted, 1 duplicate(s) ignored, 3 error(s)" in result.output, result.output
    assert "cdr-spool.sql:4: not an INSERT" in result.output
    assert "cdr-spool.sql:5: unknown billing.fs_cdr column(s): status" in result.output
    assert "cdr-spool.sql:6:" in result.output
    assert scalar(pg, "SELECT to_regclass('billing.cdr') IS NOT NULL")
    assert rated(pg, u1)["status"] == "rated" and rated(pg, u2)["sell_amount"] == 0


def test_csv_columns_from_config_file(cli, pg, world, tmp_path):
    conf = tmp_path / "cdr_pg_csv.conf.xml"
    conf.write_text("""<configuration name="cdr_pg_csv.conf"><settings/><schema>
      <field var="uuid"/><field var="billsec"/><field var="start_stamp"/>
      <field var="billing_customer_id"/><field var="billing_destination"/>
      <field var="billing_provider_id"/><field var="caller_id_number" column="caller_id_number"/>
    </schema></configuration>""")
    path = tmp_path / "spool.csv"
    uid = str(uuidlib.uuid4())
    path.write_text(f"'{uid}','60','2026-03-10 12:00:00','{world.customer.id}','33123456789',"
                    f"'{world.provider.id}',null\n")
    result = cli.invoke(args=["billing", "import-spool", str(path), "--config", str(conf)])
    assert result.exit_code == 0, result.output
    assert rated(pg, uid)["sell_amount"] == Decimal("0.020000")


def test_unknown_column_list_is_refused_before_loading(cli, db_session, tmp_path):
    path = tmp_path / "spool.csv"
    path.write_text("'a'\n")
    result = cli.invoke(args=["billing", "import-spool", str(path), "--columns", "uuid,password"])
    assert result.exit_code != 0 and "unknown billing.fs_cdr column(s): password" in result.output


@pytest.mark.parametrize("values,expected", [
    ("'a','b''c',null,12", ["a", "b'c", None, "12"]),
    ("'x, y' , 'z'", ["x, y", "z"]),
    ("''", [""]),
])
def test_split_values(values, expected):
    assert spool.split_values(values) == expected


@pytest.mark.parametrize("values", ["'a'x", "'a',", "a'b", "'open"])
def test_split_values_rejects_garbage(values):
    with pytest.raises(spool.LineError):
        spool.split_values(values)


def test_csv_columns_default_to_the_shipped_freeswitch_config(cli, pg, world, tmp_path, monkeypatch):
    conf = tmp_path / "cdr_pg_csv.conf.xml"
    conf.write_text('<configuration name="cdr_pg_csv.conf"><schema><field var="billsec"/><field var="uuid"/>'
                    '<field var="start_stamp"/><field var="billing_customer_id"/><field var="billing_destination"/>'
                    '<field var="sip_auth_username" column="sip_user"/></schema></configuration>')
    monkeypatch.setattr(spool, "DEFAULT_CONFIG", conf)
    path = tmp_path / "cdr-spool.csv"
    uid = str(uuidlib.uuid4())
    path.write_text(f"'0','{uid}','2026-03-10 12:00:00','{world.customer.id}','33123456789','acme100'\n")
    result = cli.invoke(args=["billing", "import-spool", str(path)])
    assert result.exit_code == 0, result.output
    assert one(pg, "SELECT billsec, sip_user, status FROM billing.fs_cdr WHERE uuid = %s", uid) == (0, "acme100", "rated")


def test_two_concurrent_imports_of_the_same_customers_bill_everything(fresh_db, tmp_path):
    """Seen: two `billing import-spool` runs at once, customers in opposite order: 250
    ratable CDRs stored as unrated ('internal_error: 40P01 deadlock detected') and both
    runs still busy after 300 s with 1,500 of 6,000 lines done. Now they lock customers in
    one order, in small transactions, and retry what is transient."""
    import os
    import secrets
    import subprocess
    import sys
    import time

    import psycopg2

    from tests.billing.conftest import build_world_sql
    from tests.conftest import ROOT

    conn = psycopg2.connect(fresh_db)
    ids = build_world_sql(conn, balance_="1000.00")
    customers = [ids.customer_id]
    with conn.cursor() as cur:
        for i in range(2, 21):
            cur.execute("INSERT INTO billing.customers (name) VALUES (%s) RETURNING id", (f"cust{i}",))
            customers.append(cur.fetchone()[0])
            cur.execute("INSERT INTO billing.customer_ratecards VALUES (%s, %s, 1)", (customers[-1], ids.ratecard_id))
            cur.execute("INSERT INTO billing.ledger (customer_id, kind, amount) VALUES (%s, 'initial', 1000)",
                        (customers[-1],))
    conn.commit()
    cols = spool.DEFAULT_COLUMNS
    per_file = 3000

    def spool_file(name, order):
        lines = []
        for n in range(per_file):
            customer = order[n * len(order) // per_file]
            row = {"uuid": str(uuidlib.uuid4()), "caller_id_number": "1000", "destination_number": "33123456789",
                   "start_stamp": "2026-03-10 12:00:00", "answer_stamp": "2026-03-10 12:00:05",
                   "end_stamp": "2026-03-10 12:01:05", "duration": 65, "billsec": 60,
                   "hangup_cause": "NORMAL_CLEARING", "sip_hangup_disposition": "send_bye",
                   "billing_customer_id": customer, "billing_endpoint_id": ids.endpoint_id,
                   "billing_destination": "33123456789", "billing_sell_prefix": "33", "billing_sell_rate": "0.02",
                   "billing_route_seq": 1, "billing_gateway": ids.gateway, "billing_provider_id": ids.provider_id,
                   "billing_cost_rate": "0.005"}
            values = ",".join(_csv_value(row[c]) for c in cols)
            lines.append(f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({values});")
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    files = [spool_file("a-cdr-spool.sql", customers), spool_file("b-cdr-spool.sql", customers[::-1])]
    env = dict(os.environ, DATABASE_URL=fresh_db, SECRET_KEY=secrets.token_hex(32))
    started = time.monotonic()
    runs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "billing", "import-spool", str(f)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for f in files]
    outputs = [r.communicate(timeout=240)[0] for r in runs]
    seconds = time.monotonic() - started
    assert [r.returncode for r in runs] == [0, 0], outputs
    assert all(f"{per_file} line(s): {per_file} inserted, 0 duplicate(s) ignored, 0 error(s)" in o for o in outputs)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status = 'unrated') FROM billing.fs_cdr")
        assert cur.fetchone() == (2 * per_file, 0)
        cur.execute("SELECT sum(balance) FROM billing.customers")
        assert cur.fetchone()[0] == Decimal(20 * 1000) - Decimal("0.02") * 2 * per_file
    conn.close()
    assert seconds < 120, seconds            # was still running after 300 s
    print(f"two concurrent imports of {per_file} lines: {seconds:.1f} s")
