"""Every resource of the API with a write token: what it answers, what it changes, how
it refuses (RFC 9457 problems naming the field). Each answer is checked against the
OpenAPI document by the client (tests/api/conftest.py)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, Customer, Endpoint, LedgerEntry, ProviderRate, RoutingRule, SellRate
from tests import factories
from tests.selfcare.conftest import insert_cdr

from .conftest import fields_of, problem_of


# ----------------------------------------------------------------------------- customers

def test_customers_list_with_money_and_keyset_pages(staff, world):
    first = staff.get("/api/v1/customers?limit=1").get_json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = staff.get(f"/api/v1/customers?limit=1&cursor={first['next_cursor']}").get_json()
    assert second["items"][0]["id"] > first["items"][0]["id"]
    b = next(c for c in staff.get("/api/v1/customers?q=bravo").get_json()["items"])
    # B: balance 40 - 1.40, credit 50, a hold of 3.000000 reserved
    assert (b["balance"], b["credit_limit"], b["reserved"], b["available"], b["calls_in_progress"]) == \
        ("38.600000", "50.000000", "3.000000", "85.600000", 1)


def test_create_update_delete_a_customer(staff, db_session, world):
    card = world.a.cards[0]
    created = staff.post("/api/v1/customers", json={
        "name": "delta", "billing_type": "postpaid", "credit_limit": "20", "currency": "SEK",
        "opening_balance": "5.5", "ratecard_ids": [card.id], "vat_id": "se 556012345601", "tax_rate": "0.25"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/customers/{body['id']}")
    assert (body["balance"], body["available"], body["ratecard_ids"], body["vat_id"], body["tax_rate"]) == \
        ("5.500000", "25.500000", [card.id], "SE556012345601", "0.2500")
    changed = staff.patch(f"/api/v1/customers/{body['id']}", json={"enabled": False, "ratecard_ids": []})
    assert changed.get_json()["enabled"] is False and changed.get_json()["ratecard_ids"] == []
    # it has a ledger entry (the opening balance): kept for accounting
    problem_of(staff.delete(f"/api/v1/customers/{body['id']}"), 409, "conflict")
    bare = staff.post("/api/v1/customers", json={"name": "echo"}).get_json()
    assert staff.delete(f"/api/v1/customers/{bare['id']}").status_code == 204
    assert db_session.get(Customer, bare["id"]) is None


def test_customer_refusals_name_the_field(staff, world):
    cases = [({"name": "has space"}, "name"),
             ({"name": "ok1", "credit_limit": 20}, "credit_limit"),          # money as a JSON number
             ({"name": "ok2", "credit_limit": "20"}, "credit_limit"),        # prepaid with credit
             ({"name": "ok3", "opening_balance": "1.1234567"}, "opening_balance"),
             ({"name": "ok4", "ratecard_ids": [2**31 - 1]}, "ratecard_ids"),
             ({"name": "ok5", "surprise": 1}, "surprise"),
             ({"name": "ok6", "tax_rate": "1.5"}, "tax_rate")]
    for body, field in cases:
        problem = problem_of(staff.post("/api/v1/customers", json=body), 422)
        assert field in fields_of(problem), (body, problem)
    taken = problem_of(staff.post("/api/v1/customers", json={"name": "alpha"}), 409, "conflict")
    assert fields_of(taken) == {"name"}
    pointer = problem_of(staff.post("/api/v1/customers", json={"name": "ok7", "credit_limit": 20}), 422)
    assert pointer["errors"][0]["pointer"] == "#/credit_limit" and pointer["errors"][0]["in"] == "body"


def test_applied_rates_of_a_customer(staff, world):
    rows = staff.get(f"/api/v1/customers/{world.a.customer.id}/rates?q=44").get_json()
    assert rows["total"] == 1 and rows["items"][0]["rate"] == "0.050000"
    assert rows["items"][0]["connect_fee"] == "0.010000" and rows["items"][0]["ratecard"] == "alpha-extra"


# ----------------------------------------------------------------------------- ledger

def test_ledger_entries_with_balance_after(staff, world):
    page = staff.get(f"/api/v1/customers/{world.a.customer.id}/ledger").get_json()
    assert page["total"] == 3
    assert [e["balance_after"] for e in page["items"]] == ["125.460000", "99.960000", "100.000000"]
    payments = staff.get(f"/api/v1/customers/{world.a.customer.id}/ledger?kind=payments").get_json()
    assert [e["reference"] for e in payments["items"]] == ["PAY-1"]
    problem_of(staff.get(f"/api/v1/customers/{world.a.customer.id}/ledger?kind=gifts"), 422, "validation_failed")


def test_post_a_payment_once_per_idempotency_key(staff, db_session, world):
    a = world.a.customer
    path = f"/api/v1/customers/{a.id}/ledger"
    body = {"kind": "payment", "amount": "10.25", "reference": "BANK-77"}
    first = staff.post(path, json=body, headers={"Idempotency-Key": "pay-77"})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    posted = first.get_json()
    assert (posted["amount"], posted["balance"], posted["kind"]) == ("10.250000", "135.710000", "payment")
    assert posted["created_by"].startswith("api:test write#")
    again = staff.post(path, json=body, headers={"Idempotency-Key": "pay-77"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == posted
    assert db_session.scalar(select(func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.reference == "BANK-77")) == 1
    other = problem_of(staff.post(path, json=body | {"amount": "99"}, headers={"Idempotency-Key": "pay-77"}),
                       422, "idempotency_key_reused")
    assert fields_of(other) == {"Idempotency-Key"}
    problem_of(staff.post(path, json=body), 422, "validation_failed")          # no key: refused
    audit = db_session.scalar(select(AuditLog).where(AuditLog.action == "ledger").order_by(AuditLog.id.desc()))
    assert audit.details["entry_id"] == posted["id"] and audit.actor.startswith("api:")


def test_ledger_refusals(staff, world):
    path = f"/api/v1/customers/{world.a.customer.id}/ledger"
    for n, (body, field) in enumerate([({"kind": "topup", "amount": "-5"}, None),
                                       ({"kind": "call", "amount": "-5"}, "kind"),
                                       ({"kind": "adjustment", "amount": 5}, "amount"),
                                       ({"kind": "adjustment", "amount": "0"}, None)]):
        problem = problem_of(staff.post(path, json=body, headers={"Idempotency-Key": f"bad-{n}"}), 422)
        if field:
            assert field in fields_of(problem)
    problem_of(staff.post("/api/v1/customers/2147483647/ledger", json={"kind": "topup", "amount": "1"},
                          headers={"Idempotency-Key": "nobody"}), 404)


def test_an_adjustment_may_debit(staff, world):
    posted = staff.post(f"/api/v1/customers/{world.a.customer.id}/ledger", json={"kind": "adjustment",
                        "amount": "-0.46", "note": "rounding"}, headers={"Idempotency-Key": "adj-1"}).get_json()
    assert posted["balance"] == "125.000000"


# ----------------------------------------------------------------------------- endpoints

def test_endpoints_list_get_create_update_delete(staff, db_session, world):
    listed = staff.get(f"/api/v1/endpoints?customer_id={world.a.customer.id}").get_json()["items"]
    assert [e["name"] for e in listed] == ["alpha-office", "alpha-pbx"]
    assert "password" not in listed[0]
    perm = world.a.sip.permission_id
    sip = staff.post("/api/v1/endpoints", json={"customer_id": world.a.customer.id, "name": "alpha-desk",
                                                "auth": "sip", "username": "alpha200", "permission_id": perm})
    assert sip.status_code == 201 and len(sip.get_json()["sip_password"]) == 16
    assert db_session.get(Endpoint, sip.get_json()["id"]).password == sip.get_json()["sip_password"]
    ip = staff.post("/api/v1/endpoints", json={"customer_id": world.a.customer.id, "name": "alpha-pbx2",
                                               "auth": "ip", "ip": "198.51.100.128/25", "permission_id": perm})
    assert ip.status_code == 201 and ip.get_json()["sip_password"] is None
    changed = staff.patch(f"/api/v1/endpoints/{ip.get_json()['id']}", json={"max_calls": 3, "add_prefix": "00"})
    assert (changed.get_json()["max_calls"], changed.get_json()["add_prefix"]) == (3, "00")
    assert staff.get(f"/api/v1/endpoints/{ip.get_json()['id']}").get_json()["ip"] == "198.51.100.128/25"
    assert staff.delete(f"/api/v1/endpoints/{ip.get_json()['id']}").status_code == 204


def test_endpoint_refusals_name_the_field(staff, world):
    perm = world.a.sip.permission_id
    base = {"customer_id": world.a.customer.id, "auth": "ip", "permission_id": perm}
    cases = [(base | {"name": "e1", "ip": "198.51.100.1/24"}, "ip", 422),       # host bits
             (base | {"name": "e2", "ip": "203.0.113.99/32"}, "ip", 409),       # B's range
             (base | {"name": "e3"}, "ip", 422),
             (base | {"name": "e4", "auth": "sip"}, "username", 422),
             (base | {"name": "e5", "auth": "sip", "username": "u5", "password": "short"}, "password", 422),
             (base | {"name": "e6", "ip": "192.0.2.0/24", "permission_id": 2**31 - 1}, "permission_id", 422)]
    for body, field, status in cases:
        problem = problem_of(staff.post("/api/v1/endpoints", json=body), status)
        assert field in fields_of(problem), (body, problem)


# ----------------------------------------------------------------------------- ratecards, rates

def test_ratecards_and_rates(staff, db_session, world):
    card = staff.post("/api/v1/ratecards", json={"name": "wholesale", "currency": "USD"})
    assert card.status_code == 201
    cid = card.get_json()["id"]
    assert staff.patch(f"/api/v1/ratecards/{cid}", json={"name": "wholesale-2"}).get_json()["name"] == "wholesale-2"
    rate = staff.post(f"/api/v1/ratecards/{cid}/rates", json={"prefix": "49", "rate": "0.0123", "increment": "30/6",
                                                                "valid_from": "2026-01-01T00:00:00+00:00"})
    assert rate.status_code == 201, rate.get_json()
    body = rate.get_json()
    assert (body["rate"], body["increment"], body["ratecard_id"]) == ("0.012300", "30/6", cid)
    assert staff.get(f"/api/v1/rates/{body['id']}").get_json()["prefix"] == "49"
    assert staff.patch(f"/api/v1/rates/{body['id']}", json={"blocked": True}).get_json()["blocked"] is True
    listed = staff.get(f"/api/v1/ratecards/{cid}/rates?prefix=4").get_json()
    assert [r["prefix"] for r in listed["items"]] == ["49"] and listed["next_cursor"] is None
    bad = problem_of(staff.post(f"/api/v1/ratecards/{cid}/rates", json={
        "prefix": "4x", "rate": "0.01", "valid_from": "2026-02-01T00:00:00+00:00",
        "valid_to": "2026-01-01T00:00:00+00:00"}), 422)
    assert {"prefix", "valid_to"} <= fields_of(bad)
    assert staff.delete(f"/api/v1/rates/{body['id']}").status_code == 204
    assert staff.get(f"/api/v1/ratecards/{cid}").status_code == 200
    assert staff.delete(f"/api/v1/ratecards/{cid}").status_code == 204
    in_use = problem_of(staff.delete(f"/api/v1/ratecards/{world.a.cards[0].id}"), 409, "conflict")
    assert "assigned to customers" in in_use["detail"]
    page = staff.get("/api/v1/ratecards?limit=2").get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]


def _rates_of(card_id: int) -> dict:
    rows = db.session.scalars(select(SellRate).where(SellRate.ratecard_id == card_id)).all()
    return {r.prefix: r.rate for r in rows if r.valid_to is None}


def test_bulk_upsert_is_all_or_nothing_with_the_deck_import_checks(staff, world):
    card = world.a.cards[0]
    path = f"/api/v1/ratecards/{card.id}/rates/bulk"
    before = _rates_of(card.id)
    bad = problem_of(staff.post(path, json={"rates": [
        {"prefix": "351", "rate": "0.02"}, {"prefix": "35x", "rate": "0.02"},
        {"prefix": "352", "rate": "-1"}, {"prefix": "351", "rate": "0.03"}]}), 422, "refused")
    assert {"rates[1].prefix", "rates[2].rate"} <= fields_of(bad)
    assert any(f.startswith("rates[3]") or f.startswith("rates[0]") for f in fields_of(bad)), bad   # duplicate
    assert _rates_of(card.id) == before                                                            # nothing applied
    number = problem_of(staff.post(path, json={"rates": [{"prefix": "351", "rate": 0.02}]}), 422)
    assert "rates[0].rate" in fields_of(number)                                                    # a JSON number
    dry = staff.post(path, json={"dry_run": True, "rates": [{"prefix": "351", "rate": "0.02"},
                                                           {"prefix": "33", "rate": "0.025"}]}).get_json()
    assert dry["dry_run"] is True and dry["counts"]["new"] == 1 and dry["counts"]["changed"] == 1
    assert _rates_of(card.id) == before
    done = staff.post(path, json={"rates": [{"prefix": "351", "rate": "0.02", "increment": "1/1"},
                                            {"prefix": "33", "rate": "0.025"}]})
    assert done.status_code == 200 and done.get_json()["dry_run"] is False
    assert _rates_of(card.id)["351"] == Decimal("0.020000")


def test_bulk_replace_needs_the_number_it_closes(staff, world):
    card = world.a.cards[0]
    path = f"/api/v1/ratecards/{card.id}/rates/bulk"
    deck = {"mode": "replace", "rates": [{"prefix": "33", "rate": "0.02"}]}
    refused = problem_of(staff.post(path, json=deck), 422, "refused")
    assert "confirm_removed" in fields_of(refused)
    removed = staff.post(path, json=deck | {"dry_run": True}).get_json()["counts"]["removed"]
    assert removed >= 1
    assert staff.post(path, json=deck | {"confirm_removed": removed}).status_code == 200


# ----------------------------------------------------------------------------- carriers, routing

def test_providers_gateways_and_cost_rates(staff, db_session, world):
    provider = staff.post("/api/v1/providers", json={"name": "carrier-x", "priority": 2}).get_json()
    pid = provider["id"]
    assert staff.get(f"/api/v1/providers/{pid}").get_json()["priority"] == 2
    assert staff.patch(f"/api/v1/providers/{pid}", json={"enabled": False}).get_json()["enabled"] is False
    gw = staff.post(f"/api/v1/providers/{pid}/gateways", json={"name": "gw-x", "host": "192.0.2.20",
                                                               "username": "u", "password": "p", "register": True})
    assert gw.status_code == 201 and "password" not in gw.get_json()
    gid = gw.get_json()["id"]
    assert staff.patch(f"/api/v1/gateways/{gid}", json={"port": 5080}).get_json()["port"] == 5080
    assert staff.get(f"/api/v1/gateways/{gid}").get_json()["register"] is True
    assert [g["name"] for g in staff.get(f"/api/v1/providers/{pid}/gateways").get_json()["items"]] == ["gw-x"]
    problem_of(staff.patch(f"/api/v1/gateways/{gid}", json={"password": None}), 422, "refused")
    rate = staff.post(f"/api/v1/providers/{pid}/rates", json={"prefix": "33", "rate": "0.004"}).get_json()
    assert staff.get(f"/api/v1/provider-rates/{rate['id']}").get_json()["provider_id"] == pid
    assert staff.patch(f"/api/v1/provider-rates/{rate['id']}", json={"rate": "0.005"}).get_json()["rate"] == "0.005000"
    assert staff.get(f"/api/v1/providers/{pid}/rates").get_json()["items"][0]["rate"] == "0.005000"
    bulk = staff.post(f"/api/v1/providers/{pid}/rates/bulk", json={"rates": [{"prefix": "34", "rate": "0.003"}]})
    assert bulk.get_json()["counts"]["new"] == 1
    assert db_session.scalar(select(func.count()).select_from(ProviderRate).where(ProviderRate.provider_id == pid)) == 2
    assert staff.delete(f"/api/v1/provider-rates/{rate['id']}").status_code == 204
    assert staff.delete(f"/api/v1/gateways/{gid}").status_code == 204
    assert staff.get("/api/v1/providers").get_json()["items"]
    assert staff.delete(f"/api/v1/providers/{pid}").status_code == 204


def test_routing_rules(staff, db_session, world):
    p1, p2 = factories.provider(name="carrier-r1"), factories.provider(name="carrier-r2")
    rule = staff.post("/api/v1/routing-rules", json={"customer_id": world.a.customer.id, "prefix": "33",
                                                     "provider_ids": [p1.id]})
    assert rule.status_code == 201
    rid = rule.get_json()["id"]
    changed = staff.patch(f"/api/v1/routing-rules/{rid}", json={"provider_ids": [p1.id, p2.id]}).get_json()
    assert sorted(changed["provider_ids"]) == sorted([p1.id, p2.id])
    assert staff.get(f"/api/v1/routing-rules?customer_id={world.a.customer.id}").get_json()["items"][0]["id"] == rid
    assert staff.get(f"/api/v1/routing-rules/{rid}").get_json()["prefix"] == "33"
    twice = problem_of(staff.post("/api/v1/routing-rules", json={"customer_id": world.a.customer.id, "prefix": "33",
                                                                 "provider_ids": [p2.id]}), 409)
    assert fields_of(twice) == {"prefix"}
    problem_of(staff.post("/api/v1/routing-rules", json={"customer_id": world.a.customer.id, "prefix": "34",
                                                         "provider_ids": []}), 422)
    assert staff.delete(f"/api/v1/routing-rules/{rid}").status_code == 204
    assert db_session.get(RoutingRule, rid) is None


# ----------------------------------------------------------------------------- calls

def test_cdr_pages_follow_the_cursor_to_the_end(staff, world):
    seen, cursor = [], None
    while True:
        page = staff.get("/api/v1/cdrs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}).get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(world.a.cdr_ids + world.b.cdr_ids) and len(seen) == len(set(seen))


def test_cdr_filters_are_the_browsers(staff, world):
    def ids(**query):
        return sorted(c["id"] for c in staff.get("/api/v1/cdrs", query_string=query).get_json()["items"])
    a = world.a
    assert ids(customer_id=a.customer.id) == sorted(a.cdr_ids)
    assert ids(customer_id=a.customer.id, answered="false") == [a.cdr_ids[1]]
    assert ids(prefix="44") == [a.cdr_ids[1]]
    assert ids(number="987654", match="contains", date_from=(world.month_start - timedelta(days=5)).date()
               .isoformat()) == [a.cdr_ids[2]]
    assert ids(endpoint_id=a.ip.id, hangup_cause="NO_ANSWER") == [a.cdr_ids[1]]
    staff_row = staff.get(f"/api/v1/cdrs?customer_id={a.customer.id}").get_json()["items"][0]
    assert "customer" in staff_row and "cost_amount" in staff_row
    problem_of(staff.get("/api/v1/cdrs?cursor=garbage"), 422, "refused")
    problem_of(staff.get("/api/v1/cdrs?number=12&match=contains&date_from=2020-01-01&date_to=2020-12-31"), 422)
    problem_of(staff.get("/api/v1/cdrs?limit=5000"), 422, "validation_failed")


def test_cdr_csv_by_content_negotiation(staff, world):
    insert_cdr(world.a.customer, world.a.sip, "33555", world.now - timedelta(minutes=1), 10, "0.01",
               caller_id='=HYPERLINK("http://x","y")')
    response = staff.get("/api/v1/cdrs", headers={"Accept": "text/csv"}, query_string={"customer_id":
                                                                                        world.a.customer.id})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == len(world.a.cdr_ids) + 1
    assert "'=HYPERLINK(\"http://x\",\"y\")" in {r["caller_id"] for r in rows}      # the formula guard
    json_answer = staff.get("/api/v1/cdrs", headers={"Accept": "application/json, text/csv;q=0.5"})
    assert json_answer.mimetype == "application/json"


def test_cdr_detail_and_totals(staff, customer_a, world):
    call = staff.get(f"/api/v1/cdrs/{world.a.cdr_ids[0]}").get_json()
    assert call["sell_amount"] == "0.040000" and call["customer"] == "alpha"
    own = customer_a.get(f"/api/v1/cdrs/{world.a.cdr_ids[0]}").get_json()
    assert own["sell_amount"] == "0.040000" and "customer" not in own and "cost_amount" not in own
    totals = staff.get("/api/v1/cdrs/totals", query_string={"customer_id": world.a.customer.id}).get_json()
    assert (totals["calls"], totals["answered"], totals["revenue"]) == (3, 2, "0.060000")
    problem_of(staff.get("/api/v1/cdrs/2147483647"), 404, "not_found")


def test_calls_in_progress_show_their_holds(staff, world):
    from tests.selfcare.conftest import hold

    h = hold(world.a.customer, world.a.ip, "live-a2", "0.500000", "447700900000")
    h.granted_seconds, h.grants = 300, 2
    db.session.flush()
    calls = staff.get(f"/api/v1/calls?customer_id={world.a.customer.id}").get_json()
    assert calls["count"] == 2 and calls["reserved"] == "1.734567"
    second = next(c for c in calls["items"] if c["call_uuid"] == "live-a2")
    assert (second["granted_seconds"], second["grants"], second["amount"]) == (300, 2, "0.500000")
    assert second["expires_at"] and second["endpoint"] == "alpha-pbx"
    assert staff.get("/api/v1/calls").get_json()["count"] == 3


# ----------------------------------------------------------------------------- invoices, simulator

def test_invoices_list_detail_pdf(staff, world):
    listed = staff.get("/api/v1/invoices").get_json()["items"]
    assert {i["customer_id"] for i in listed} == {world.a.customer.id, world.b.customer.id}
    one = staff.get(f"/api/v1/invoices?customer_id={world.b.customer.id}&kind=invoice").get_json()["items"][0]
    assert one["number"] and one["gross_total"].count(".") == 1 and len(one["gross_total"].split(".")[1]) == 6
    assert staff.get(f"/api/v1/invoices/{one['id']}").get_json()["number"] == one["number"]
    pdf = staff.get(f"/api/v1/invoices/{one['id']}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")


def test_simulator(staff, world):
    sim = staff.post("/api/v1/simulate", json={"source_ip": "198.51.100.7", "destination": "33123456789"}).get_json()
    assert sim["customer_id"] == world.a.customer.id and sim["sell_rate"] == "0.020000"
    assert sim["ok"] is False and sim["reason"] == "no_route"      # no carrier in this world
    problem = problem_of(staff.post("/api/v1/simulate", json={"source_ip": "not-an-ip", "destination": "33"}), 422)
    assert fields_of(problem) == {"source_ip"}
    problem_of(staff.post("/api/v1/simulate", json={"source_ip": "198.51.100.7"}), 422, "validation_failed")
