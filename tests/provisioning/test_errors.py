"""Bad files: the exact error, with the path of the entry, and nothing changed."""
from __future__ import annotations

import pytest

from portal.provisioning import ProvisioningError
from tests import factories

CASES = {
    "unknown key at the top": ("colour: red", ["colour: unknown key"]),
    "unknown key in settings": ("settings: {currency: EUR}", ["settings.currency: unknown key"]),
    "unknown key in a customer": ("customers: [{name: acme, colour: red}]", ["customers[0].colour: unknown key"]),
    "unknown key in an endpoint, with a hint": (
        "customers: [{name: acme, endpoints: [{name: acme-pbx, auth: ip, ip: 198.51.100.7/32, permission: standard, passwd: x}]}]",
        ["customers[0].endpoints[0].passwd: unknown key (did you mean 'password'?)"]),
    "unknown key in a rate": (
        "ratecards: [{name: retail, rates: [{prefix: '33', rate: '0.01', price: '0.01'}]}]",
        ["ratecards[0].rates[0].price: unknown key"]),
    "unknown key in a gateway": (
        "providers: [{name: carrier_a, gateways: [{name: gw_a1, host: 192.0.2.10, proxy: x}]}]",
        ["providers[0].gateways[0].proxy: unknown key"]),
    "bad CIDR (the contract's example)": (
        """
        customers:
          - name: acme
          - name: beta
            endpoints:
              - {name: beta-pbx, auth: ip, ip: 300.1.2.3/32, permission: standard}
        """,
        ["customers[1].endpoints[0].ip: not a CIDR"]),
    "CIDR with host bits": (
        "customers: [{name: beta, endpoints: [{name: b, auth: ip, ip: 10.1.2.3/24, permission: standard}]}]",
        ["customers[0].endpoints[0].ip: not a CIDR: host bits are set (did you mean 10.1.2.0/24?)"]),
    "bad destination prefix": (
        "destinations: [{prefix: '33a', name: X, weight: local}]",
        ["destinations[0].prefix: not a prefix (1 to 20 digits)"]),
    "prefix with a plus": (
        "ratecards: [{name: retail, rates: [{prefix: '+33', rate: '0.01'}]}]",
        ["ratecards[0].rates[0].prefix: not a prefix (1 to 20 digits)"]),
    "prefix too long": (
        "destinations: [{prefix: '123456789012345678901', name: X, weight: local}]",
        ["destinations[0].prefix: not a prefix (1 to 20 digits)"]),
    "unknown permission": (
        "customers: [{name: acme, endpoints: [{name: acme-pbx, auth: ip, ip: 198.51.100.7/32, permission: gold}]}]",
        ["customers[0].endpoints[0].permission: unknown permission 'gold'"]),
    "unknown weight": (
        "permissions: [{name: p2, weights: [local, satellite]}]\ndestinations: [{prefix: '8816', name: Iridium, weight: sat}]",
        ["permissions[0].weights[1]: unknown weight 'satellite'", "destinations[0].weight: unknown weight 'sat'"]),
    "unknown ratecard and provider": (
        "customers: [{name: acme, ratecards: [{name: gold}], routing_rules: [{prefix: '33', providers: [carrier_a, carrier_z]}]}]",
        ["customers[0].ratecards[0].name: unknown ratecard 'gold'",
         "customers[0].routing_rules[0].providers[1]: unknown provider 'carrier_z'"]),
    "negative rate": (
        "ratecards: [{name: retail, rates: [{prefix: '33', rate: '-0.01'}]}]",
        ["ratecards[0].rates[0].rate: must be >= 0"]),
    "negative connect fee in a provider rate": (
        "providers: [{name: carrier_a, rates: [{prefix: '33', rate: 0, connect_fee: -1}]}]",
        ["providers[0].rates[0].connect_fee: must be >= 0"]),
    "bad increments": (
        """
        ratecards:
          - name: retail
            rates:
              - {prefix: '1', rate: '0.01', increment: 0/60}
              - {prefix: '2', rate: '0.01', increment: 60/0}
              - {prefix: '3', rate: '0.01', increment: 60}
              - {prefix: '4', rate: '0.01', increment: '-1/6'}
        """,
        [f"ratecards[0].rates[{i}].increment: not an increment like 60/60 (first/next seconds, each 1 to 86400)"
         for i in range(4)]),
    "too many decimals": (
        """
        ratecards: [{name: retail, rates: [{prefix: '33', rate: 0.0000001}]}]
        customers: [{name: new_one, balance: "1.1234567", tax_rate: 0.12345}]
        """,
        ["ratecards[0].rates[0].rate: more than 6 decimal places",
         "customers[0].balance: more than 6 decimal places",
         "customers[0].tax_rate: more than 4 decimal places"]),
    "not numbers": (
        "customers: [{name: acme, max_calls: ten, credit_limit: lots, low_balance_alert: .inf}]",
        ["customers[0].max_calls: must be a whole number", "customers[0].credit_limit: not a decimal number",
         "customers[0].low_balance_alert: not a decimal number"]),
    "duplicate names": (
        """
        weights: [{name: local}, {name: mobile}, {name: local}]
        providers:
          - {name: p1, gateways: [{name: gw, host: a.example}]}
          - {name: p2, gateways: [{name: gw, host: b.example}]}
        customers:
          - {name: acme, endpoints: [{name: e1, auth: sip, username: u1, password: longenough, permission: standard}]}
          - {name: beta, endpoints: [{name: e1, auth: sip, username: u1, password: longenough, permission: standard}]}
          - {name: acme}
        """,
        ["weights[2].name: duplicate of weights[0]",
         "providers[1].gateways[0].name: duplicate of providers[0].gateways[0]",
         "customers[2].name: duplicate of customers[0]",
         "customers[1].endpoints[0].name: duplicate of customers[0].endpoints[0]",
         "customers[1].endpoints[0].username: duplicate of customers[0].endpoints[0]"]),
    "duplicate rate": (
        "ratecards: [{name: retail, rates: [{prefix: '33', rate: 1}, {prefix: '33', rate: 2}]}]",
        ["ratecards[0].rates[1]: duplicate of ratecards[0].rates[0] (same prefix and valid_from)"]),
    "valid_to before valid_from": (
        "ratecards: [{name: retail, rates: [{prefix: '33', rate: 1, valid_from: 2026-02-01, valid_to: 2026-01-01}]}]",
        ["ratecards[0].rates[0].valid_to: must be after valid_from"]),
    "missing keys": (
        "customers: [{endpoints: [{name: x, ip: 10.0.0.0/8}]}]",
        ["customers[0].endpoints[0].auth: required", "customers[0].endpoints[0].permission: required",
         "customers[0].name: required"]),
    "sip endpoint without credentials, ip endpoint without ip": (
        "customers: [{name: acme, endpoints: [{name: s, auth: sip, permission: standard}, {name: i, auth: ip, permission: standard}]}]",
        ["customers[0].endpoints[0].username: required for auth: sip",
         "customers[0].endpoints[0].password: required for auth: sip",
         "customers[0].endpoints[1].ip: required for auth: ip"]),
    "prepaid with credit": (
        "customers: [{name: acme, billing: prepaid, credit_limit: '5'}]",
        ["customers[0].credit_limit: must be 0 for a prepaid customer (credit is for postpaid)"]),
    "bad enumerations and names": (
        "customers: [{name: 'acme corp', billing: monthly, lcr_strategy: cheapest, email: nobody}]",
        ["customers[0].name: must be 1 to 64 letters, digits, '.', '_' or '-'",
         "customers[0].billing: must be one of: prepaid, postpaid",
         "customers[0].lcr_strategy: must be one of: cost, quality, reliability, equal, priority",
         "customers[0].email: not an e-mail address"]),
    "wrong shapes": (
        "weights: {name: local}\ncustomers: [acme]\nratecards:",
        ["weights: expected a list (write [] for none)", "ratecards: expected a list (write [] for none)",
         "customers[0]: expected a mapping of keys to values"]),
    "register without credentials": (
        "providers: [{name: carrier_a, gateways: [{name: gw_a1, host: 192.0.2.10, register: true}]}]",
        ["providers[0].gateways[0].username: required when register is true",
         "providers[0].gateways[0].password: required when register is true"]),
    "short passwords": (
        "customers: [{name: acme, users: [{email: a@acme.example, password: short}],"
        " endpoints: [{name: s, auth: sip, username: s1, password: short, permission: standard}]}]",
        ["customers[0].endpoints[0].password: must be 8 to 128 characters",
         "customers[0].users[0].password: must be at least 10 characters"]),
    "rates and csv together": (
        "ratecards: [{name: retail, rates: [], csv: rates.csv}]",
        ["ratecards[0].csv: give either rates or csv, not both"]),
    "duplicate YAML key": (
        "customers:\n  - name: acme\n    name: beta\n",
        ["config.yaml: line 3, column 5: duplicate key 'name'"]),
    "YAML syntax error": (
        "customers: [{name: acme\n",
        None),
    "empty file": ("", ["(file): the file is empty"]),
}


def _check(exc: ProvisioningError, expected, tmp_path):
    errors = [e.replace(str(tmp_path) + "/", "") for e in exc.errors]
    if expected is None:
        assert len(errors) == 1 and errors[0].startswith("config.yaml: line 2, column 1:"), errors
    else:
        assert sorted(errors) == sorted(expected)


# Errors only the database state can reveal: found after validation, still nothing changed.
DB_CASES = {
    "SIP username of another endpoint": (
        "customers: [{name: beta, endpoints: [{name: b1, auth: sip, username: acme100, password: longenough, permission: standard}]}]",
        ["customers[0].endpoints[0].username: 'acme100' is already used by endpoint 'acme-100'"]),
    "endpoint of another customer": (
        "customers: [{name: beta, endpoints: [{name: acme-pbx, auth: ip, ip: 10.0.0.0/8, permission: standard}]}]",
        ["customers[0].endpoints[0].name: endpoint 'acme-pbx' belongs to customer 'acme'"]),
    "gateway of another provider": (
        "providers: [{name: carrier_b, gateways: [{name: gw_a1, host: 192.0.2.99}]}]",
        ["providers[0].gateways[0].name: gateway 'gw_a1' belongs to provider 'carrier_a'"]),
    "login of another customer": (
        "customers: [{name: beta, users: [{email: ops@acme.example, password: long-enough-pw}]}]",
        ["customers[0].users[0].email: 'ops@acme.example' belongs to customer 'acme'"]),
    "IP range of another customer (the brief's example)": (
        """
        customers:
          - name: acme
          - name: beta
            endpoints:
              - {name: beta-net, auth: ip, ip: 198.51.100.0/24, permission: standard}
        """,
        ["customers[1].endpoints[0].ip: overlaps 198.51.100.7/32 of customer acme"]),
    "overlapping ranges of two customers in one file": (
        """
        customers:
          - {name: gamma, endpoints: [{name: gamma-net, auth: ip, ip: 10.0.0.0/8, permission: standard}]}
          - {name: delta, endpoints: [{name: delta-net, auth: ip, ip: 10.1.0.0/16, permission: standard}]}
        """,
        ["customers[1].endpoints[0].ip: overlaps 10.0.0.0/8 of customer gamma"]),
    "the same range twice for one customer": (
        "customers: [{name: acme, endpoints: [{name: acme-pbx2, auth: ip, ip: 198.51.100.7/32, permission: standard}]}]",
        ["customers[0].endpoints[0].ip: the same range as endpoint acme-pbx (198.51.100.7/32) of customer acme"]),
    "new user without a password": (
        "customers: [{name: acme, users: [{email: new@acme.example}]}]",
        ["customers[0].users[0].password: required for a new user"]),
    "credit for an existing prepaid customer (a database check)": (
        """
        weights: [{name: extra}]
        destinations: [{prefix: '49', name: Germany, weight: extra}]
        customers:
          - {name: beta, billing: postpaid, credit_limit: '10', balance: '5'}
          - {name: acme, credit_limit: '5'}
        """,
        ["customers[1]: a prepaid customer cannot have a credit limit: set credit_limit to 0 or billing to postpaid"]),
}


@pytest.mark.parametrize("content, expected", [*CASES.values(), *DB_CASES.values()], ids=[*CASES, *DB_CASES])
def test_bad_file_is_refused_with_the_exact_error_and_changes_nothing(base, load, counts, tmp_path, content, expected):
    before = counts()
    with pytest.raises(ProvisioningError) as excinfo:
        load(content)
    _check(excinfo.value, expected, tmp_path)
    assert counts() == before


def test_admin_login_cannot_be_taken_over(base, load, counts, db_session):
    factories.user("boss@example.net", "admin-password-1", role="admin")
    before = counts()
    with pytest.raises(ProvisioningError) as excinfo:
        load("customers: [{name: acme, users: [{email: boss@example.net, password: long-enough-pw}]}]")
    assert excinfo.value.errors == ["customers[0].users[0].email: 'boss@example.net' is an admin login"]
    assert counts() == before


def test_database_error_names_the_entry(base, load, counts):
    # The same moment written twice in two forms passes the Python duplicate check;
    # the database refuses it and the error still names the rate list.
    before = counts()
    with pytest.raises(ProvisioningError) as excinfo:
        load("""
            ratecards:
              - name: retail
                rates:
                  - {prefix: '33', rate: 1, valid_from: 2026-01-01}
                  - {prefix: '33', rate: 2, valid_from: '2026-01-01 00:00:00'}
        """)
    [error] = excinfo.value.errors
    assert error.startswith("ratecards[0].rates: rejected by the database: ON CONFLICT DO UPDATE command cannot affect row a second time")
    assert counts() == before


def test_every_error_of_a_file_is_reported_at_once(load):
    with pytest.raises(ProvisioningError) as excinfo:
        load("""
            weights: [{name: local, extra: 1}]
            customers: [{name: acme, max_calls: -1, endpoints: [{name: e, auth: ip, ip: nope, permission: nobody}]}]
        """)
    assert excinfo.value.errors == [
        "weights[0].extra: unknown key",
        "customers[0].max_calls: must be >= 0",
        "customers[0].endpoints[0].ip: not a CIDR",
    ]
