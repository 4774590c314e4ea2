"""The pure Lua modules, on every Lua flavour lupa ships (5.1, 5.2, 5.3, 5.4, LuaJIT)."""
from __future__ import annotations

import pytest

from tests.lua.conftest import FLAVOURS


def test_every_required_flavour_is_tested():
    assert {"lua52", "lua53", "luajit21"} <= set(FLAVOURS)


def call(lua, module, fn, *args):
    m = lua.eval(f'(require("billing.lib.{module}"))')
    return m[fn](*args)


@pytest.mark.parametrize("number, ok", [
    ("33123456789", True), ("+33123456789", True), ("1", True), ("+" + "9" * 20, True),
    ("9" * 20, True), ("9" * 21, False), ("", False), ("+", False), ("++33", False), ("33 12", False),
    ("33a", False), ("0x33", False), ("３３", False), ("33'; DROP TABLE billing.customers; --", False),
    ("33\n", False), ("33\x00", False), (" 33", False), ("*33", False),
])
def test_destination_validation(lua, number, ok):
    assert (call(lua, "validate", "destination", number) == number) is ok


@pytest.mark.parametrize("address, expected", [
    ("198.51.100.7", "198.51.100.7"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
    ("256.1.1.1", None), ("1.2.3", None), ("1.2.3.4.5", None), ("1.2.3.4 ", None), ("01234.1.1.1", None),
    ("2001:db8::1", "2001:db8::1"), ("[2001:db8::1]", "2001:db8::1"), ("::1", "::1"),
    ("::ffff:192.0.2.1", "192.0.2.1"), ("[::FFFF:192.0.2.1]", "192.0.2.1"), ("::ffff:c000:201", "::ffff:c000:201"), ("2001:db8:0:0:0:0:0:1", "2001:db8:0:0:0:0:0:1"),
    ("2001:db8::1::2", None), ("2001:db8:::1", None), ("12345::1", None), ("2001:db8::g", None),
    ("1:2:3:4:5:6:7", None), ("1:2:3:4:5:6:7:8:9", None), ("::ffff:999.0.2.1", None),
    ("1.2.3.4'--", None), ("", None),
])
def test_ip_validation(lua, address, expected):
    assert call(lua, "validate", "ip", address) == expected


def test_ip_validation_agrees_with_postgresql(lua, pg):
    """Whatever the validator accepts, PostgreSQL's inet accepts too (no query error)."""
    samples = ["198.51.100.7", "2001:db8::1", "::1", "::ffff:192.0.2.1", "fe80:0:0:0:0:0:0:1", "10.0.0.255"]
    with pg.cursor() as cur:
        for s in samples:
            v = call(lua, "validate", "ip", s)
            assert v is not None
            cur.execute("SELECT %s::inet", (v,))


@pytest.mark.parametrize("cid, expected", [
    ("0033123456789", "0033123456789"), ("+33 1 23", "+33 1 23"), ("O'Brien", "O'Brien"),
    ("a\\b", None), ("x\x00y", None), ("line\nbreak", None), ("é", None), ("9" * 65, None), ("", None),
])
def test_caller_id_validation(lua, cid, expected):
    assert call(lua, "validate", "caller_id", cid) == expected


NASTY = ["plain", "it's", "''", "'; DROP TABLE billing.customers; --", "x' OR '1'='1", "$$dollar$$",
         "E'\\x41'", "%s %d %%", "🙂 unicode ü", "a" * 256]


@pytest.mark.parametrize("value", NASTY)
def test_sql_literal_round_trips_through_postgresql(lua, pg, value):
    quoted = call(lua, "sql", "literal", value)
    if "\\" in value:
        assert quoted == (None, "backslash")     # refused, see below
        return
    with pg.cursor() as cur:
        cur.execute("SELECT " + quoted)
        assert cur.fetchone()[0] == value


@pytest.mark.parametrize("value, err", [
    ("nul\x00byte", "control character"), ("tab\tx", "control character"), ("cr\r", "control character"),
    ("del\x7f", "control character"), ("back\\slash", "backslash"), ("a" * 257, "too long"),
])
def test_sql_literal_refuses_what_could_change_its_meaning(lua, value, err):
    m = lua.eval('(require("billing.lib.sql"))')
    quoted, message = m.literal(value)
    assert quoted is None and message == err


def test_sql_literal_refuses_non_strings(lua):
    m = lua.eval('(require("billing.lib.sql"))')
    assert m.literal(lua.eval("12"))[0] is None
    assert m.literal(None)[0] is None


def test_sql_literal_or_null(lua):
    m = lua.eval('(require("billing.lib.sql"))')
    assert m.literal_or_null(None, "inet") == "NULL::inet"
    assert m.literal_or_null("", "text") == "NULL::text"
    assert m.literal_or_null("1.2.3.4", "inet") == "'1.2.3.4'::inet"
    assert m.literal_or_null("a'b") == "'a''b'"


def test_config_defaults_and_overrides(lua):
    config = lua.eval('(require("billing.lib.config"))')
    cfg = config.load(None)
    assert cfg.dsn is None
    assert cfg.limit_realm == "billing_gateways"
    assert cfg.sip_codes.insufficient_funds == 402
    assert cfg.sip_codes.destination_not_allowed == 403
    assert cfg.sip_codes.unknown_destination == 404
    assert cfg.callee_causes.USER_BUSY and cfg.callee_causes.NO_ANSWER
    assert cfg.callee_causes.NORMAL_TEMPORARY_FAILURE is None
    overrides = {"billing_dsn": "pgsql://x", "billing_sip_code_too_many_calls": "503",
                 "billing_sip_code_no_rate": "not a number", "billing_prompt_insufficient_funds": "ivr/credit.wav",
                 "billing_limit_realm": "bad realm", "billing_callee_causes": "USER_BUSY, NO_ANSWER"}
    cfg = config.load(lambda name: overrides.get(name))
    assert cfg.dsn == "pgsql://x"
    assert cfg.sip_codes.too_many_calls == 503
    assert cfg.sip_codes.no_rate == 404
    assert cfg.prompts.insufficient_funds == "ivr/credit.wav"
    assert cfg.limit_realm == "billing_gateways"
    assert cfg.callee_causes.USER_BUSY and cfg.callee_causes.CALL_REJECTED is None


def test_config_of_set_up_timeout_and_hangup_after_bridge(lua):
    config = lua.eval('(require("billing.lib.config"))')
    cfg = config.load(None)
    assert cfg.route_timeout_ms == 2000 and cfg.hangup_after_bridge is True
    for text, expected in (("500", 500), ("50", 2000), ("999999", 2000), ("soon", 2000)):
        assert config.load(lambda name: {"billing_route_timeout_ms": text}.get(name)).route_timeout_ms == expected
    assert config.load(lambda name: {"billing_hangup_after_bridge": "false"}.get(name)).hangup_after_bridge is False


def test_config_of_the_gateway_limit_share(lua):
    config = lua.eval('(require("billing.lib.config"))')
    assert config.load(None).gateway_limit_share == 100
    for text, expected in (("50", 50), ("1", 1), ("100", 100), ("0", 100), ("101", 100), ("33.5", 100),
                           ("half", 100)):
        assert config.load(lambda name: {"billing_gateway_limit_share": text}.get(name)).gateway_limit_share == expected


HOSTILE_VALUES = ["plain", "it's", "a b  c", "back\\slash", "semi;colon&amp=eq%25", "sofia/gateway/gw_1/+33",
                  "{no_throttle_limits=true}[leg_timeout=30]", "", "é ü 🙂", "line\nbreak"]


def test_offload_answer_survives_uuid_setvar(lua):
    """An answer encoded by the worker reaches the call unchanged through uuid_setvar's
    parser (quotes and backslashes stripped, split on spaces)."""
    from tests.lua.emulator import _separate_string

    offload = lua.eval('(require("billing.lib.offload"))')
    rows = [{"route_seq": str(i), "value": v, "n" + str(i): v} for i, v in enumerate(HOSTILE_VALUES)]
    encoded = offload.encode_rows(lua.table_from([lua.table_from(r) for r in rows]))
    assert " " not in encoded and "'" not in encoded and "\\" not in encoded
    uuid, name, value = _separate_string(f"u-1 billing_route_answer {encoded}", 3)
    assert value == encoded
    decoded = offload.decode(value)
    assert [dict(decoded[i + 1]) for i in range(len(rows))] == rows
    assert offload.decode(offload.encode_rows(lua.table_from([]))) is not None
    assert len(offload.decode(offload.encode_rows(lua.table_from([])))) == 0
    message = offload.decode(offload.encode_error("ERROR:  it's broken; really"))
    assert message == (None, "ERROR:  it's broken; really")
    assert offload.decode("r;a=b c")[0] is None and offload.decode("x;")[0] is None
    assert offload.decode(None)[0] is None


def test_xml_escape(lua):
    x = lua.eval('(require("billing.lib.xml"))')
    assert x.escape('<a href="x">&\'</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
    assert x.param("a-b", 'x"/><evil/>') == '<param name="a-b" value="x&quot;/&gt;&lt;evil/&gt;"/>'


def test_build_query_quotes_everything(lua):
    router = lua.eval('(require("billing.lib.router"))')
    call_ = lua.table_from({"uuid": "abc-123", "destination": "+33123", "caller_id": "x' OR 1=1 --",
                            "network_addr": "1.2.3.4'", "sip_user": "bob'; --"})
    q = router.build_query(call_)
    assert "billing.route_call('abc-123'::text, NULL::inet, 'bob''; --'::text, 'x'' OR 1=1 --'::text, '+33123'::text)" in q
    call_.destination = "33;"
    assert router.build_query(call_) == (None, "destination")
    call_.destination = "33"
    call_.uuid = "a b"
    assert router.build_query(call_) == (None, "uuid")
    call_.uuid = "u1"
    call_.sip_user = "nul\x00"
    assert router.build_query(call_) == (None, "sip_user")


def test_no_accidental_globals(lua):
    before = set(lua.eval("(function() local t = {} for k in pairs(_G) do t[#t+1] = k end return t end)()").values())
    for module in ("sql", "validate", "config", "log", "router", "xml", "xmlhandler", "db", "offload",
                   "route_worker"):
        lua.eval(f'(require("billing.lib.{module}"))')
    after = set(lua.eval("(function() local t = {} for k in pairs(_G) do t[#t+1] = k end return t end)()").values())
    assert after == before
