"""seed-demo: realistic, consistent, deterministic and idempotent."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from portal.provisioning import demo
from portal.security import verify_password
from tests import factories


@pytest.fixture()
def seeded(cli):
    result = cli.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result


def _scalar(pg, sql, *args):
    with pg.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def test_seed_demo_loads_a_realistic_data_set(seeded, pg):
    assert _scalar(pg, "SELECT count(*) FROM billing.customers") == 5
    assert _scalar(pg, "SELECT count(DISTINCT billing_type) FROM billing.customers") == 2
    assert _scalar(pg, "SELECT count(*) FROM billing.endpoints WHERE auth = 'ip'") >= 4
    assert _scalar(pg, "SELECT count(*) FROM billing.endpoints WHERE auth = 'sip'") >= 6
    assert _scalar(pg, "SELECT count(*) FROM billing.destinations") >= 300
    assert _scalar(pg, "SELECT min(n) FROM (SELECT count(*) AS n FROM billing.rates GROUP BY ratecard_id) s") >= 300
    assert _scalar(pg, "SELECT count(*) FROM billing.providers") == 2
    assert _scalar(pg, "SELECT min(n) FROM (SELECT count(*) AS n FROM billing.provider_rates GROUP BY provider_id) s") >= 300
    assert _scalar(pg, "SELECT count(*) FROM billing.routing_rules") >= 1
    for prefix in ("33", "336", "49", "4915", "44", "447", "1", "1212", "3389"):
        assert _scalar(pg, "SELECT count(*) FROM billing.destinations WHERE prefix = %s", prefix) == 1, prefix
    calls = _scalar(pg, "SELECT count(*) FROM billing.fs_cdr")
    assert calls == sum(demo.CALLS_PER_CUSTOMER.values())
    assert _scalar(pg, "SELECT min(start_stamp) > now() - interval '46 days' AND max(end_stamp) < now() FROM billing.fs_cdr")
    answered = _scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE billsec > 0")
    assert 0.5 * calls < answered < 0.85 * calls
    assert "Demo logins:" in seeded.stdout
    for email, password, customer in [("ops@acme.example", "acme-demo-pass", "acme"),
                                      ("admin@resellco.example", "resellco-demo-pass", "resellco")]:
        assert f"  {email} / {password}  (customer {customer})" in seeded.stdout


def test_demo_calls_carry_the_variables_route_lua_would_set(seeded, pg):
    # Every answered call: endpoint of its customer, number after the endpoint's strip,
    # sell rate and prefix = the customer's rate at start (billing_private.find_sell_rate),
    # cost rate = the provider's rate, gateway of that provider.
    mismatches = _scalar(pg, """
        SELECT count(*)
          FROM billing.fs_cdr f
          JOIN billing.endpoints e ON e.id = f.billing_endpoint_id
          JOIN billing.gateways g ON g.name = f.billing_gateway
          CROSS JOIN LATERAL billing_private.find_sell_rate(f.billing_customer_id, f.billing_destination, f.start_stamp) s
          CROSS JOIN LATERAL billing_private.find_provider_rate(f.billing_provider_id, f.billing_destination, f.start_stamp) c
         WHERE f.billsec > 0
           AND (e.customer_id <> f.billing_customer_id
                OR substr(f.destination_number, e.strip_digits + 1) <> f.billing_destination
                OR s.prefix <> f.billing_sell_prefix OR s.rate <> f.billing_sell_rate
                OR c.rate <> f.billing_cost_rate OR g.provider_id <> f.billing_provider_id
                OR f.billing_reject_reason IS NOT NULL)""")
    assert mismatches == 0
    rated = _scalar(pg, """SELECT count(*) FROM billing.fs_cdr f
        WHERE f.billsec > 0 AND EXISTS (SELECT FROM billing_private.find_sell_rate(f.billing_customer_id, f.billing_destination, f.start_stamp))""")
    assert rated == _scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE billsec > 0")
    assert _scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE billing_reject_reason IS NOT NULL AND billsec = 0") > 0
    assert _scalar(pg, "SELECT count(*) FROM billing.fs_cdr WHERE billing_route_seq = 2") > 0


def test_demo_calls_are_billed_against_their_holds(seeded, pg):
    # route.lua holds money before each answered call: the demo's CDRs find their hold,
    # nothing is left to review (no call without a hold, beyond its grant or too long)
    # and no hold stays behind blocking a customer's money.
    assert _scalar(pg, "SELECT count(*) FROM billing.cdr WHERE billsec > 0 AND held_seconds IS NULL") == 0
    assert _scalar(pg, "SELECT count(*) FROM billing.cdr WHERE overrun_seconds > 0 OR no_hold OR absurd_duration") == 0
    assert _scalar(pg, "SELECT count(*) FROM billing.call_holds") == 0


def test_demo_calls_are_in_their_months_partitions(seeded, pg):
    # the demo reaches back 45 days, before the partitions the migrations create: the
    # months it reaches get theirs, the default partition stays empty
    assert _scalar(pg, "SELECT count(*) FROM billing.cdr") > 0
    assert _scalar(pg, "SELECT count(*) FROM billing.cdr_default") == 0


def test_seed_demo_is_idempotent(seeded, cli, pg, counts):
    before = counts()
    uuids = _scalar(pg, "SELECT string_agg(uuid, ',' ORDER BY uuid) FROM billing.fs_cdr")
    again = cli.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "demo calls: 0 inserted" in again.stdout and "customers: 5 unchanged" in again.stdout
    after = counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert _scalar(pg, "SELECT string_agg(uuid, ',' ORDER BY uuid) FROM billing.fs_cdr") == uuids


def test_prepaid_balances_cover_the_demo_calls(seeded, pg):
    # Opening balance = what the calls cost + what should be left once they are billed.
    now = datetime.now(timezone.utc)
    calls = demo.generate_calls(demo.Plan.from_document(demo.build_document(now.date())), now)
    spent = sum((c.charge for c in calls if c.customer == "acme"), Decimal(0))
    opening = _scalar(pg, "SELECT amount FROM billing.ledger l JOIN billing.customers c ON c.id = l.customer_id "
                          "WHERE c.name = 'acme' AND l.kind = 'initial'")
    assert opening == demo.PREPAID_LEFT["acme"] + spent and spent > 0
    assert _scalar(pg, "SELECT count(*) FROM billing.ledger l JOIN billing.customers c ON c.id = l.customer_id "
                       "WHERE c.billing_type = 'postpaid' AND l.kind = 'initial'") == 0


def test_generation_is_deterministic():
    today, now = date(2026, 5, 17), datetime(2026, 5, 17, 12, 0, tzinfo=timezone.utc)
    first = demo.build_document(today)
    assert demo.build_document(today) == first
    plan = demo.Plan.from_document(first)
    assert [c.row for c in demo.generate_calls(plan, now)] == [c.row for c in demo.generate_calls(plan, now)]


def test_demo_password_hashes_match_the_printed_passwords():
    document = demo.build_document(date(2026, 5, 17))
    users = {u["email"]: u["password"] for c in document["customers"] for u in c.get("users", [])}
    assert set(users) == set(demo.DEMO_PASSWORD_HASHES)
    for email, password in users.items():
        assert verify_password(demo.DEMO_PASSWORD_HASHES[email], password), email


def test_a_database_with_other_customers_is_left_alone(cli, db_session, counts):
    factories.customer(name="real-customer")
    before = counts()
    result = cli.invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "already holds customers that are not demo data" in result.stdout
    assert counts() == before


def test_demo_calls_agree_with_route_preview(seeded, pg):
    # What billing.route_preview (CONTRACT 1, without a hold) answers now for each
    # demo call: the same customer, endpoint, destination and sell rate, the call's
    # route among the routes offered, and the same reason for the refused ones.
    with pg.cursor() as cur:
        cur.execute("""
            SELECT f.billing_reject_reason IS NULL AS routed, count(DISTINCT f.uuid),
                   count(DISTINCT f.uuid) FILTER (WHERE r.ok AND r.route_seq = 1
                        AND (r.customer_id, r.endpoint_id, r.destination, r.sell_prefix, r.sell_rate)
                          = (f.billing_customer_id, f.billing_endpoint_id, f.billing_destination,
                             f.billing_sell_prefix, f.billing_sell_rate)),
                   count(DISTINCT f.uuid) FILTER (WHERE (r.gateway, r.provider_id, r.cost_rate)
                          = (f.billing_gateway, f.billing_provider_id, f.billing_cost_rate)),
                   count(DISTINCT f.uuid) FILTER (WHERE NOT r.ok AND r.reason = f.billing_reject_reason)
              FROM billing.fs_cdr f
             CROSS JOIN LATERAL billing.route_preview(f.uuid, f.network_addr::inet, f.sip_user,
                                                      f.caller_id_number, f.destination_number) r
             WHERE f.billing_reject_reason IS NOT NULL OR f.id % 4 = 0  -- a quarter of the routed calls is plenty
             GROUP BY 1 ORDER BY 1""")
        (_, refused, _, _, same_reason), (_, routed, same_sell, route_offered, _) = cur.fetchall()
    assert refused > 0 and same_reason == refused
    assert routed > 0 and same_sell == routed and route_offered == routed
