"""xml_handler.lua: SIP directory, carriers' gateways and the ACL from the database.

The real script runs in the emulator (fresh Lua state per request, XML_REQUEST and
params globals, XML_STRING answer) as the billing_freeswitch role; every answer is
parsed with xml.etree and checked like sofia reads it.
"""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

from tests import factories

NOT_FOUND = "not found"


def parse(text):
    assert text is not None
    return ET.fromstring(text.encode())


def is_not_found(text) -> bool:
    root = parse(text)
    result = root.find("./section[@name='result']/result")
    return result is not None and result.get("status") == NOT_FOUND


def sip_auth(host, user, domain="sip.example.net"):
    return host.xml_fetch("directory", "domain", "name", domain,
                          {"action": "sip_auth", "user": user, "domain": domain, "sip_auth_username": user,
                           "ip": "203.0.113.5"})


def set_domain(pg, domain="sip.example.net"):
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.settings SET sip_domain = %s", (domain,))


def sip_endpoint(**kw):
    w = factories.weight()
    perm = factories.permission([w])
    c = factories.customer(enabled=kw.pop("customer_enabled", True))
    return factories.endpoint(c, perm, auth="sip", **kw)


def test_sip_user_gets_a1_hash_context_and_variables(host, pg, as_freeswitch):
    set_domain(pg, "voip.example.org")
    ep = sip_endpoint(username="acme100", password="s3cret-pass", context="acme", codecs="PCMA,G729")
    with as_freeswitch:
        text = sip_auth(host, "acme100", "voip.example.org")
    root = parse(text)
    assert root.tag == "document" and root.get("type") == "freeswitch/xml"
    domain = root.find("./section[@name='directory']/domain[@name='voip.example.org']")
    user = domain.find("./users/user[@id='acme100']")
    params = {p.get("name"): p.get("value") for p in user.findall("./params/param")}
    assert params == {"a1-hash": hashlib.md5(b"acme100:voip.example.org:s3cret-pass").hexdigest()}
    variables = {v.get("name"): v.get("value") for v in user.findall("./variables/variable")}
    assert variables["user_context"] == "acme"
    assert variables["billing_endpoint_id"] == str(ep.id)
    assert variables["billing_customer_id"] == str(ep.customer_id)
    assert variables["absolute_codec_string"] == "PCMA,G729"
    assert "s3cret-pass" not in text
    assert host.dbh_released == host.dbh_opened == 1


def test_domain_must_be_the_billing_sip_domain(host, pg, as_freeswitch):
    set_domain(pg)
    sip_endpoint(username="bob1", password="password-1")
    with as_freeswitch:
        assert is_not_found(sip_auth(host, "bob1", "other.example.net"))
        assert not is_not_found(sip_auth(host, "bob1", "SIP.example.NET"))


def test_unknown_disabled_and_ip_endpoints_are_not_found(host, pg, as_freeswitch):
    set_domain(pg)
    sip_endpoint(username="off1", password="password-1", enabled=False)
    sip_endpoint(username="off2", password="password-1", customer_enabled=False)
    with as_freeswitch:
        for user in ("nobody", "off1", "off2"):
            assert is_not_found(sip_auth(host, user))


def test_malformed_user_is_refused_before_any_sql(host, pg, as_freeswitch):
    with as_freeswitch:
        for user in ("x' OR '1'='1", "a b", "", "u\x00", "ü", "a" * 65):
            assert is_not_found(sip_auth(host, user))
        assert is_not_found(sip_auth(host, "bob", "evil'domain"))
    assert host.queries == []


def test_other_directory_lookups_are_not_found(host, pg, as_freeswitch):
    with as_freeswitch:
        assert is_not_found(host.xml_fetch("directory", "domain", "name", "sip.example.net",
                                           {"action": "message-count", "user": "x", "domain": "sip.example.net"}))
        assert is_not_found(host.xml_fetch("directory", "domain", "name", "sip.example.net", None))
    assert host.queries == []


def gateways_xml(host, profile="carriers", domain="billing.gateways"):
    return host.xml_fetch("directory", "domain", "name", domain, {"purpose": "gateways", "profile": profile})


def test_gateways_of_enabled_providers(host, pg, as_freeswitch):
    a = factories.provider(name="carrier_a")
    factories.gateway(a, name="gw_a1", host="192.0.2.10", port=5060, codecs="PCMA,PCMU")
    factories.gateway(a, name="gw_a2", host="2001:db8::10", port=5070, transport="tcp",
                      username="acct", password='p<&>"\'w', register=True)
    factories.gateway(a, name="gw_a3_off", enabled=False)
    off = factories.provider(name="carrier_off", enabled=False)
    factories.gateway(off, name="gw_off1")
    with as_freeswitch:
        text = gateways_xml(host)
    root = parse(text)
    user = root.find("./section[@name='directory']/domain[@name='billing.gateways']/user[@id='carriers']")
    gws = {g.get("name"): g for g in user.findall("./gateways/gateway")}
    assert sorted(gws) == ["gw_a1", "gw_a2"]

    def params(g):
        return {p.get("name"): p.get("value") for p in g.findall("./param")}

    def variables(g):
        return {v.get("name"): (v.get("value"), v.get("direction")) for v in g.findall("./variables/variable")}

    assert params(gws["gw_a1"]) == {"proxy": "192.0.2.10:5060", "realm": "192.0.2.10", "register": "false",
                                    "register-transport": "udp", "caller-id-in-from": "true"}
    assert variables(gws["gw_a1"])["absolute_codec_string"] == ("PCMA,PCMU", "outbound")
    assert variables(gws["gw_a1"])["billing_provider_id"] == (str(a.id), "outbound")
    p2 = params(gws["gw_a2"])
    assert p2["proxy"] == "[2001:db8::10]:5070;transport=tcp"
    assert p2["realm"] == "[2001:db8::10]"
    assert p2["register"] == "true" and p2["username"] == "acct"
    assert p2["password"] == 'p<&>"\'w'          # escaped in the text, exact once parsed
    assert "absolute_codec_string" not in variables(gws["gw_a2"])


def test_gateways_only_for_the_gateway_domain_and_carriers_profile(host, pg, as_freeswitch):
    factories.gateway(factories.provider(), name="gw_x1")
    with as_freeswitch:
        assert is_not_found(gateways_xml(host, domain="sip.example.net"))
        assert is_not_found(gateways_xml(host, profile="bad profile"))
        other = parse(gateways_xml(host, profile="customers"))
    assert other.findall(".//gateway") == []


def test_gateway_domain_is_configurable(host, pg, as_freeswitch):
    host.globals["billing_gateway_domain"] = "gw.internal"
    factories.gateway(factories.provider(), name="gw_y1")
    with as_freeswitch:
        assert is_not_found(gateways_xml(host))
        root = parse(gateways_xml(host, domain="gw.internal"))
    assert [g.get("name") for g in root.iter("gateway")] == ["gw_y1"]


def test_acl_lists_enabled_ip_endpoints(host, pg, as_freeswitch):
    w = factories.weight()
    perm = factories.permission([w])
    c = factories.customer()
    factories.endpoint(c, perm, ip="198.51.100.7/32")
    factories.endpoint(c, perm, ip="203.0.113.0/24")
    factories.endpoint(c, perm, ip="192.0.2.99/32", enabled=False)
    factories.endpoint(factories.customer(enabled=False), perm, ip="192.0.2.98/32")
    factories.endpoint(c, perm, auth="sip")
    with as_freeswitch:
        text = host.xml_fetch("configuration", "configuration", "name", "acl.conf", {})
    root = parse(text)
    lst = root.find("./section[@name='configuration']/configuration[@name='acl.conf']/network-lists/list")
    assert lst.get("name") == "billing_customers" and lst.get("default") == "deny"
    assert sorted(n.get("cidr") for n in lst.findall("node")) == ["198.51.100.7/32", "203.0.113.0/24"]
    assert {n.get("type") for n in lst.findall("node")} == {"allow"}


def test_everything_else_falls_back_to_static_xml(host, pg, as_freeswitch):
    with as_freeswitch:
        assert is_not_found(host.xml_fetch("configuration", "configuration", "name", "sofia.conf",
                                           {"profile": "carriers"}))
        assert is_not_found(host.xml_fetch("dialplan", None, None, None, {"Caller-Context": "default"}))
        assert is_not_found(host.xml_fetch("phrases", None, None, None, {}))
    assert host.queries == []


def test_database_down_answers_not_found_and_logs(flavour, pg):
    from tests.lua.emulator import Host

    down = Host(flavour, pg, globals_={"billing_dsn": "pgsql://x"}, db_down=True)
    assert is_not_found(sip_auth(down, "acme100"))
    assert is_not_found(down.xml_fetch("configuration", "configuration", "name", "acl.conf", {}))
    assert "database unreachable" in down.log_text()
    no_dsn = Host(flavour, pg)
    assert is_not_found(sip_auth(no_dsn, "acme100"))
    assert "billing_dsn is not set" in no_dsn.log_text()
