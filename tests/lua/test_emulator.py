"""The emulator itself keeps FreeSWITCH's semantics (FREESWITCH.md): if these drift, a
script could pass here and fail in the switch."""
from __future__ import annotations

from tests.lua.emulator import Host, Outcome

DSN = "pgsql://hostaddr=127.0.0.1 dbname=x"


def run(host, code, **globals_):
    lua = host.new_state()
    for k, v in globals_.items():
        lua.globals()[k] = v
    return lua.execute(code)


def test_rows_are_tables_of_strings_with_null_as_empty(flavour, pg):
    host = Host(flavour, pg, globals_={"billing_dsn": DSN})
    out = run(host, """
        local dbh = freeswitch.Dbh(freeswitch.getGlobalVariable("billing_dsn"))
        local rows = {}
        local ok = dbh:query("SELECT 1 AS n, NULL::text AS z, true AS b, 0.020000::numeric AS r, "
                             .. "'1.2.3.4'::inet AS ip, 'x' AS d, 'y' AS d", function(row) rows[#rows + 1] = row end)
        local r = rows[1]
        return ok, type(r.n), r.n, r.z, r.b, r.r, r.ip, r.d, dbh:connected()
    """)
    assert out == (True, "string", "1", "", "t", "0.020000", "1.2.3.4", "y", True)


def test_callback_stop_rule(flavour, pg):
    host = Host(flavour, pg, globals_={"billing_dsn": DSN})
    code = """
        local dbh = freeswitch.Dbh("%s")
        local seen = 0
        local ok = dbh:query("SELECT generate_series(1, 5) AS i", function(row) seen = seen + 1; return RET end)
        return ok, seen
    """ % DSN
    for ret, seen in [("nil", 5), ("true", 5), ("false", 5), ("0", 5), ("'abc'", 5), ("0.5", 5),
                      ("1", 1), ("-1", 1), ("'2'", 1), ("' 3 '", 1), ("'0x10'", 1)]:
        assert run(host, code.replace("RET", ret)) == (True, seen), ret


def test_error_in_callback_is_logged_and_stops(flavour, pg):
    host = Host(flavour, pg, globals_={"billing_dsn": DSN})
    out = run(host, """
        local dbh = freeswitch.Dbh("%s")
        local seen = 0
        local ok = dbh:query("SELECT generate_series(1, 5) AS i", function(row) seen = seen + 1; error("boom") end)
        return ok, seen
    """ % DSN)
    assert out == (True, 1)
    assert any("boom" in e for e in host.errors())


def test_sql_error_returns_false_sets_last_error_and_next_query_clears_it(flavour, pg):
    host = Host(flavour, pg, globals_={"billing_dsn": DSN})
    out = run(host, """
        local dbh = freeswitch.Dbh("%s")
        local bad = dbh:query("SELECT * FROM no_such_table", function() end)
        local err = dbh:last_error()
        local good = dbh:query("SELECT 1 AS one", function() end)
        return bad, type(err), good, dbh:last_error()
    """ % DSN)
    assert out == (False, "string", True, None)


def test_affected_rows_release_and_down(flavour, pg):
    host = Host(flavour, pg, globals_={"billing_dsn": DSN})
    out = run(host, """
        local dbh = freeswitch.Dbh("%s")
        dbh:query("CREATE TEMP TABLE t (i int); INSERT INTO t SELECT generate_series(1, 3)")
        local n = dbh:affected_rows()
        dbh:release()
        return n, dbh:connected(), dbh:query("SELECT 1", function() end)
    """ % DSN)
    assert out == (3, False, False)
    down = Host(flavour, pg, db_down=True)
    assert run(down, 'local d = freeswitch.Dbh("%s") return d:connected(), d:query("SELECT 1")' % DSN) == (False, False)


def test_session_variable_lookup_order_and_unset(flavour, pg):
    host = Host(flavour, pg, globals_={"g": "global", "uuid": "not-this-one"})
    ch = host.call(destination="123", variables={"v": "channel"})
    lua = host.new_state()
    ch.bind(lua)
    lua.globals().session = ch.lua_obj
    out = lua.execute("""
        local a = session:getVariable("v")
        local b = session:getVariable("destination_number")
        local c = session:getVariable("g")
        local u = session:getVariable("uuid")
        session:setVariable("v", nil)
        session:setVariable("n", 5)
        session:execute("set", "x=${destination_number}-${n}")
        return a, b, c, u, session:getVariable("v"), session:getVariable("x"), session:getVariable("missing")
    """)
    assert out == ("channel", "123", "global", ch.uuid, None, "123-5", None)


def test_unknown_application_hangs_up(flavour):
    host = Host(flavour)
    ch = host.call(destination="1")
    ch.bind(host.new_state())
    ch.execute("no_such_app", "x")
    assert ch.hangup_cause == "DESTINATION_OUT_OF_ORDER"


def test_failed_bridge_without_continue_on_fail_hangs_up_except_no_answer(flavour):
    host = Host(flavour)
    host.gateways = {"busy": Outcome(cause="USER_BUSY", sip=486), "noans": Outcome(cause="NO_ANSWER")}
    a = host.call(destination="1")
    a.bind(host.new_state())
    a.execute("bridge", "sofia/gateway/noans/1")
    assert a.ready() and a.vars["originate_disposition"] == "NO_ANSWER"
    a.execute("bridge", "sofia/gateway/busy/1")
    assert a.hangup_cause == "USER_BUSY" and a.sip_response == 486
    b = host.call(destination="1", variables={"continue_on_fail": "NORMAL_TEMPORARY_FAILURE,USER_BUSY"})
    b.bind(host.new_state())
    b.execute("bridge", "sofia/gateway/busy/1")
    assert b.ready() and b.vars["DIALSTATUS"] == "BUSY"
    b.execute("bridge", "sofia/gateway/unknown/1")
    assert b.hangup_cause == "INVALID_GATEWAY"


def test_limit_execute_skips_when_full_and_releases(flavour):
    host = Host(flavour)
    host.gateways = {"gw": Outcome(cause="NORMAL_TEMPORARY_FAILURE")}
    ch = host.call(destination="1", variables={"continue_on_fail": "true"})
    ch.bind(host.new_state())
    ch.execute("limit_execute", "hash r gw 1 bridge sofia/gateway/gw/1")
    assert len(ch.bridges) == 1 and host.limits[("r", "gw")] == 0
    host.limits[("r", "gw")] = 1
    ch.set_variable("originate_disposition", None)
    ch.execute("limit_execute", "hash r gw 1 bridge sofia/gateway/gw/1")
    assert len(ch.bridges) == 1 and ch.get_variable("originate_disposition") is None


def test_xml_handler_globals(flavour):
    host = Host(flavour)
    lua = host.new_state()
    assert lua.execute("return type(freeswitch.API():executeString('limit_usage hash r gw'))") == "string"
