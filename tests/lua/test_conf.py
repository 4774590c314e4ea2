"""The sample FreeSWITCH configuration (freeswitch/conf) agrees with the scripts and the
schema: parsed with xml.etree like FreeSWITCH reads it."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.lua.emulator import CONF, ROOT, SCRIPTS, Host

CONTRACT_2 = ["uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
              "duration", "billsec", "hangup_cause", "sip_hangup_disposition", "billing_customer_id",
              "billing_endpoint_id", "billing_destination", "billing_sell_prefix", "billing_sell_rate",
              "billing_route_seq", "billing_gateway", "billing_provider_id", "billing_cost_rate"]
XML_FILES = sorted(CONF.rglob("*.xml")) + sorted((ROOT / "freeswitch" / "test" / "sipp").glob("*.xml"))


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_xml_file_is_well_formed(path):
    ET.parse(path)


def conf(relative: str):
    return ET.parse(CONF / relative).getroot()


def params(element):
    return {p.get("name"): p.get("value") for p in element.iter("param")}


def preprocessed_vars() -> dict[str, str]:
    out = {}
    for pre in conf("billing_vars.xml").iter("X-PRE-PROCESS"):
        name, _, value = pre.get("data").partition("=")
        out[name] = value
    return out


def test_cdr_config_maps_contract_2_onto_fs_cdr(pg):
    root = conf("autoload_configs/cdr_pg_csv.conf.xml")
    settings = params(root.find("settings"))
    assert settings["db-table"] == "billing.fs_cdr"
    assert settings["legs"] == "a"
    assert settings["spool-format"] in ("sql", "csv")
    assert settings["db-info"] == "$${billing_cdr_conninfo}"
    fields = {(f.get("column") or f.get("var")): f.get("var") for f in root.find("schema").findall("field")}
    for column in CONTRACT_2:
        assert fields.get(column) == column, column
    for column in ("start_epoch", "answer_epoch", "end_epoch"):     # time zone: see the trigger
        assert fields.get(column) == column
    with pg.cursor() as cur:
        cur.execute("""SELECT column_name FROM information_schema.columns
                        WHERE table_schema = 'billing' AND table_name = 'fs_cdr'""")
        existing = {r[0] for r in cur.fetchall()}
    assert set(fields) <= existing


def test_cdr_insert_as_the_switch_role_with_a_foreign_time_zone(flavour, pg, as_freeswitch):
    """mod_cdr_pg_csv's INSERT, built from the shipped config, as billing_freeswitch; the
    stamps written in the switch's zone end up as the right instants (from the epochs)."""
    host = Host(flavour, pg, switch_tz="America/Los_Angeles", clock=1_790_000_000)
    ch = host.call(destination="33123456789", caller_id="O'Brien")
    ch.answered_at = host.clock + 5
    host.clock += 65
    ch.hangup("NORMAL_CLEARING")
    ch.finish()
    assert ch.vars["start_stamp"] == "2026-09-21 07:13:20"     # local text (UTC-7), no zone
    with as_freeswitch:
        host.cdr_insert(ch)
    with pg.cursor() as cur:
        cur.execute("""SELECT extract(epoch FROM start_stamp), extract(epoch FROM answer_stamp),
                              extract(epoch FROM end_stamp), billsec, duration, hangup_cause_q850
                         FROM billing.fs_cdr WHERE uuid = %s""", (ch.uuid,))
        start, answer, end, billsec, duration, q850 = cur.fetchone()
    assert (int(start), int(answer), int(end)) == (1_790_000_000, 1_790_000_005, 1_790_000_065)
    assert (billsec, duration, q850) == (60, 65, 16)


def test_unanswered_cdr_has_no_answer_stamp(flavour, pg, as_freeswitch):
    host = Host(flavour, pg)
    ch = host.call(destination="33123456789")
    ch.hangup("USER_BUSY")
    ch.finish()
    assert ch.vars["answer_epoch"] == "0" and "answer_stamp" not in ch.vars
    with as_freeswitch:
        host.cdr_insert(ch)
    with pg.cursor() as cur:
        cur.execute("SELECT answer_stamp, billsec, sip_hangup_disposition FROM billing.fs_cdr WHERE uuid = %s",
                    (ch.uuid,))
        assert cur.fetchone() == (None, 0, "send_refuse")


def test_lua_conf_binds_the_xml_handler():
    p = params(conf("autoload_configs/lua.conf.xml"))
    assert p["xml-handler-script"] == "billing/xml_handler.lua"
    assert (SCRIPTS / p["xml-handler-script"]).is_file()
    assert set(p["xml-handler-bindings"].split(",")) == {"directory", "configuration"}
    assert p["script-directory"] == "$${script_dir}/?.lua"


def test_pgsql_and_lua_are_preloaded():
    modules = [m.get("module") for m in conf("autoload_configs/pre_load_modules.conf.xml").iter("load")]
    assert modules[:2] == ["mod_pgsql", "mod_lua"]
    loaded = {m.get("module") for m in conf("autoload_configs/modules.conf.xml").iter("load")}
    assert {"mod_sofia", "mod_cdr_pg_csv", "mod_hash", "mod_dptools", "mod_commands", "mod_dialplan_xml"} <= loaded
    assert not loaded & {"mod_pgsql", "mod_lua"}


def test_dialplan_routes_every_call_through_route_lua_then_fails_closed():
    root = conf("dialplan/billing.xml")
    default = root.find("./context[@name='default']")
    actions = [(a.get("application"), a.get("data")) for a in default.iter("action")]
    assert actions == [("lua", "billing/route.lua"), ("hangup", "TEMPORARY_FAILURE")]
    assert (SCRIPTS / "billing" / "route.lua").is_file()
    carriers = [(a.get("application"), a.get("data")) for a in root.find("./context[@name='carriers']").iter("action")]
    assert carriers == [("hangup", "CALL_REJECTED")]


def test_sofia_profiles():
    sofia = conf("autoload_configs/sofia.conf.xml")
    includes = [p.get("data") for p in sofia.iter("X-PRE-PROCESS")]
    assert includes == ["../sip_profiles/customers.xml", "../sip_profiles/carriers.xml"]
    customers = conf("sip_profiles/customers.xml")
    c = params(customers.find("settings"))
    assert customers.get("name") == "customers"
    assert c["auth-calls"] == "true"
    assert c["apply-inbound-acl"] == "billing_customers"
    assert c["challenge-realm"] == "$${billing_sip_domain}"
    assert c["context"] == "default"
    assert c["inbound-late-negotiation"] == "true"        # so route.lua's codec string applies
    carriers = conf("sip_profiles/carriers.xml")
    assert carriers.get("name") == "carriers"
    domain = carriers.find("./domains/domain")
    assert domain.attrib == {"name": "$${billing_gateway_domain}", "alias": "false", "parse": "true"}
    assert params(carriers.find("settings"))["context"] == "carriers"
    assert params(carriers.find("settings"))["sip-port"] != c["sip-port"]


def test_static_acl_is_the_fail_closed_fallback():
    lst = conf("autoload_configs/acl.conf.xml").find("./network-lists/list")
    assert lst.attrib == {"name": "billing_customers", "default": "deny"}
    assert lst.findall("node") == []


def test_vars_agree_with_the_scripts_defaults(lua):
    v = preprocessed_vars()
    assert v["billing_dsn"].startswith("pgsql://")
    assert "user=billing_freeswitch" in v["billing_dsn"] and "user=billing_freeswitch" in v["billing_cdr_conninfo"]
    cfg = lua.eval('(require("billing.lib.config"))').load(lambda name: None)
    assert v["billing_gateway_domain"] == cfg.gateway_domain
    assert lua.eval('(require("billing.lib.xmlhandler"))').ACL_LIST == "billing_customers"


def test_route_lua_is_a_few_lines_that_only_wire_modules():
    text = (SCRIPTS / "billing" / "route.lua").read_text()
    code = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("--")]
    assert len(code) <= 15
    assert "SELECT" not in "\n".join(code)          # SQL lives in lib/router.lua


def test_lib_modules_are_local_tables():
    for path in sorted((SCRIPTS / "billing" / "lib").glob("*.lua")):
        text = path.read_text()
        assert text.count("local M = {}") == 1 and text.rstrip().endswith("return M"), path.name
        assert not re.search(r"\bgoto\b|//", text.replace("://", "")), path.name
