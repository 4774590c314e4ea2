"""The FreeSWITCH configuration (freeswitch/conf) agrees with the scripts and the schema.
Read first through FreeSWITCH's own preprocessor (tests/lua/fsconf.py, ported from
switch_xml.c), then with xml.etree; the real switch starts it in tests/switch/."""
from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.lua.emulator import CONF, ROOT, SCRIPTS, Host
from tests.lua.fsconf import comment_spans, preprocess

# What FreeSWITCH defines itself before reading the configuration (switch_core.c).
CORE_VARIABLES = {"local_ip_v4": "192.0.2.2", "script_dir": "/usr/share/freeswitch/scripts",
                  "log_dir": "/var/log/freeswitch", "base_dir": "/usr"}

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
    return preprocess(CONF / "freeswitch.xml", CORE_VARIABLES).variables


# --------------------------------------------------------------------------- as the switch reads it

def test_the_switch_reads_one_whole_document():
    """freeswitch.xml through the preprocessor: no runaway include, one XML document with
    every module's configuration and the dialplan."""
    result = preprocess(CONF / "freeswitch.xml", CORE_VARIABLES)
    root = ET.fromstring(result.text)
    assert root.tag == "document"
    sections = {s.get("name"): s for s in root.findall("section")}
    assert set(sections) == {"configuration", "dialplan"}
    names = {c.get("name") for c in sections["configuration"].findall("configuration")}
    assert {"switch.conf", "modules.conf", "pre_load_modules.conf", "lua.conf", "sofia.conf", "acl.conf",
            "cdr_pg_csv.conf", "event_socket.conf", "logfile.conf", "console.conf"} <= names
    assert {c.get("name") for c in sections["dialplan"].findall("context")} == {"default", "carriers"}
    assert [d[1] for d in result.directives if d[0] == "include"] == [
        "billing_vars.xml", "autoload_configs/*.xml", "../sip_profiles/customers.xml",
        "../sip_profiles/carriers.xml", "dialplan/*.xml"]


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.xml")), ids=lambda p: str(p.relative_to(CONF)))
def test_no_comment_holds_what_the_preprocessor_acts_on(path):
    """The preprocessor runs directives and drops or rewrites lines without knowing about
    comments: a comment must not spell a directive, an include tag, a processing
    instruction or a variable to expand."""
    text = path.read_text()
    for start, end in comment_spans(text):
        comment = text[start:end]
        assert "x-pre-process" not in comment.lower(), f"{path.name}: directive in a comment: {comment[:80]}"
        for marker in ("<include>", "</include>", "<?", "$${", "<!--#"):
            assert marker not in comment, f"{path.name}: {marker} in a comment"


def test_only_the_documented_settings_are_set():
    """The optional settings are documented, not set: a "commented out" set line would
    still run (bridge timeout, SIP codes, prompts)."""
    variables = preprocessed_vars()
    billing = {k for k in variables if k.startswith("billing_")}
    assert billing == {
        "billing_db_host", "billing_db_port", "billing_db_name", "billing_db_password", "billing_db_options",
        "billing_dsn", "billing_cdr_conninfo", "billing_route_timeout_ms", "billing_sip_domain",
        "billing_gateway_domain", "billing_sip_ip", "billing_customers_sip_port", "billing_carriers_sip_port",
        "billing_rtp_start_port", "billing_rtp_end_port", "billing_esl_ip", "billing_esl_port",
        "billing_esl_password", "billing_calls_per_second", "billing_max_calls", "billing_max_db_handles",
        "billing_log_level"}
    assert variables["billing_dsn"] == (
        "pgsql://host=127.0.0.1 port=5432 dbname=billing user=billing_freeswitch password=CHANGE-ME "
        "connect_timeout=2 application_name=freeswitch_route options=-cstatement_timeout=2000 ")
    assert variables["billing_sip_ip"] == CORE_VARIABLES["local_ip_v4"]


def configure(tmp_path, *settings, check=True):
    return subprocess.run([str(ROOT / "freeswitch" / "configure"), "--conf", str(tmp_path / "conf"),
                           "--scripts", str(tmp_path / "scripts"), *settings],
                          capture_output=True, text=True, check=check)


def test_configure_installs_the_tree_and_sets_values(tmp_path):
    configure(tmp_path, "billing_db_host=10.0.0.5,10.0.0.6", "billing_db_password=s3cr'et&x",
              "billing_db_options=target_session_attrs=read-write", "billing_bridge_timeout=45")
    assert (tmp_path / "scripts" / "billing" / "route.lua").is_file()
    assert sorted(p.relative_to(tmp_path / "conf") for p in (tmp_path / "conf").rglob("*.xml")) == \
        sorted(p.relative_to(CONF) for p in CONF.rglob("*.xml"))
    v = preprocess(tmp_path / "conf" / "freeswitch.xml", CORE_VARIABLES).variables
    assert v["billing_db_host"] == "10.0.0.5,10.0.0.6"
    assert v["billing_bridge_timeout"] == "45"                 # an optional setting is added
    assert "host=10.0.0.5,10.0.0.6 " in v["billing_dsn"] and "password=s3cr'et&x " in v["billing_dsn"]
    assert v["billing_dsn"].endswith(" target_session_attrs=read-write")
    assert v["billing_cdr_conninfo"].endswith(" target_session_attrs=read-write")
    # A second run keeps the operator's settings and changes only what it is given.
    configure(tmp_path, "billing_sip_domain=sip.operator.example")
    v = preprocess(tmp_path / "conf" / "freeswitch.xml", CORE_VARIABLES).variables
    assert v["billing_db_host"] == "10.0.0.5,10.0.0.6" and v["billing_sip_domain"] == "sip.operator.example"


@pytest.mark.parametrize("bad", ['billing_db_password=a"b', "1abc=x", "billing dsn=x", "noequals"])
def test_configure_refuses_what_would_break_the_file(tmp_path, bad):
    result = configure(tmp_path, bad, check=False)
    assert result.returncode == 2 and "configure:" in result.stderr
    assert not (tmp_path / "conf" / "billing_vars.xml").exists()


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
    # NORMAL_TEMPORARY_FAILURE (SIP 503): a name FreeSWITCH does not know, such as
    # TEMPORARY_FAILURE, hangs up with NORMAL_CLEARING and answers 480.
    assert actions == [("lua", "billing/route.lua"), ("hangup", "NORMAL_TEMPORARY_FAILURE")]
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
