"""IP endpoints in the provisioning file: a range belongs to one customer (0090); a
customer's ranges may nest; the check sees the file's final state, not the old one."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import ipranges
from portal.models import Endpoint
from portal.provisioning import ProvisioningError
from tests import factories


def _ips(db_session):
    return dict(db_session.execute(select(Endpoint.name, Endpoint.ip).where(Endpoint.auth == "ip")).all())


def test_nested_ranges_of_one_customer_load(base, load, db_session):
    load("customers: [{name: acme, endpoints: [{name: acme-net, auth: ip, ip: 198.51.100.0/24, permission: standard}]}]")
    assert _ips(db_session) == {"acme-pbx": "198.51.100.7/32", "acme-net": "198.51.100.0/24"}


def test_a_range_moves_to_another_customer_in_one_file(base, load, db_session):
    """acme gives up 198.51.100.7/32 and beta takes it: allowed, since after the load
    only beta has it (the check uses the file's final state)."""
    load("""
        customers:
          - {name: acme, endpoints: [{name: acme-pbx, auth: ip, ip: 192.0.2.7/32, permission: standard}]}
          - {name: beta, endpoints: [{name: beta-pbx, auth: ip, ip: 198.51.100.0/25, permission: standard}]}
        """)
    assert _ips(db_session) == {"acme-pbx": "192.0.2.7/32", "beta-pbx": "198.51.100.0/25"}


def test_an_endpoint_that_becomes_sip_frees_its_range(base, load, db_session):
    load("""
        customers:
          - {name: acme, endpoints: [{name: acme-pbx, auth: sip, username: acmepbx, password: long-enough, permission: standard}]}
          - {name: beta, endpoints: [{name: beta-pbx, auth: ip, ip: 198.51.100.7/32, permission: standard}]}
        """)
    assert _ips(db_session)["beta-pbx"] == "198.51.100.7/32"


def test_the_database_constraint_backs_the_check(db_session):
    """Without the loader's check the exclusion constraint still refuses the overlap."""
    perm = factories.permission([factories.weight()])
    a, b = factories.customer("ipa"), factories.customer("ipb")
    factories.endpoint(a, perm, ip="203.0.113.0/24")
    factories.endpoint(a, perm, ip="203.0.113.8/29")          # nested, same customer: fine
    with pytest.raises(Exception, match="ex_endpoints_ip_one_customer"):
        with db_session.begin_nested():
            factories.endpoint(b, perm, ip="203.0.113.9/32")
    with pytest.raises(Exception, match="uq_endpoints_ip"):
        with db_session.begin_nested():
            factories.endpoint(a, perm, ip="203.0.113.0/24")


def test_conflicts_among_finds_every_later_overlap():
    r = ipranges.Range
    ranges = [r("a", "a1", "acme", "10.0.0.0/8"), r("b", "b1", "beta", "192.0.2.0/24"),
              r("c", "a2", "acme", "10.1.0.0/16"), r("d", "g1", "gamma", "10.1.2.0/24"),
              r("e", "b2", "beta", "2001:db8::/32"), r("f", "g2", "gamma", "2001:db8:1::/48"),
              r("g", "b3", "beta", "192.0.2.0/24")]
    pairs = [(later.key, earlier.key) for later, earlier in ipranges.conflicts_among(ranges)]
    assert pairs == [("d", "a"), ("d", "c"), ("f", "e"), ("g", "b")]
