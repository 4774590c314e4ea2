"""The shared domain services under both scopes: staff (customer_id=None) see every
customer and both sides of a call; a customer scope sees that customer's rows only,
and only the customer's side. Self care, the back office and the API call these same
functions; the world is the self-care one (A and B, B's texts contain BRAVO)."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from portal.cdrs import services as cdrs
from portal.customers import services as customers
from portal.endpoints import services as endpoints
from portal.errors import NotFound
from portal.extensions import db
from portal.ledger import services as ledger
from portal.rates import services as rates
from tests.selfcare.conftest import assert_no_b, hold

D = Decimal
STAFF_ONLY = {"cost_rate", "cost_amount", "margin", "gateway", "route_seq", "unrated_reason", "provider", "provider_id",
              "customer", "customer_id", "currency", "provider_currency", "cost_currency", "cost_amount_original",
              "exchange_rate", "fs_cdr_id",
              "held_seconds", "overrun_seconds", "no_hold", "absurd_duration"}       # CONTRACT 1b review flags


# ----------------------------------------------------------------------------- CDRs

def test_cdr_page_staff_sees_every_customer_and_both_sides(world, pg):
    page = cdrs.page(pg, cdrs.CdrFilter())
    assert sorted(r["id"] for r in page.rows) == sorted(world.a.cdr_ids + world.b.cdr_ids)
    assert STAFF_ONLY <= set(page.rows[0])
    assert {r["customer"] for r in page.rows} == {"alpha", "bravo-zq"}


def test_cdr_page_customer_scope_sees_own_rows_and_own_side_only(world, pg):
    page = cdrs.page(pg, cdrs.CdrFilter(), customer_id=world.a.customer.id)
    assert sorted(r["id"] for r in page.rows) == sorted(world.a.cdr_ids)
    assert not STAFF_ONLY & set(page.rows[0])
    assert_no_b(repr(page.rows))
    # a filter naming B (as a staff filter could) matches nothing inside A's scope
    for flt in (cdrs.CdrFilter(customer_id=world.b.customer.id), cdrs.CdrFilter(endpoint_id=world.b.sip.id)):
        assert cdrs.page(pg, flt, customer_id=world.a.customer.id).rows == []
        assert cdrs.totals(pg, flt, customer_id=world.a.customer.id)["calls"] == 0
    # the same filter without the scope is staff's choice of customer
    assert [r["id"] for r in cdrs.page(pg, cdrs.CdrFilter(customer_id=world.b.customer.id)).rows] == world.b.cdr_ids


def test_cdr_rows_are_the_same_calls_under_both_scopes(world, pg):
    """The customer's view of a call is the staff view minus the staff-only columns."""
    staff = {r["id"]: r for r in cdrs.page(pg, cdrs.CdrFilter(customer_id=world.a.customer.id)).rows}
    own = cdrs.page(pg, cdrs.CdrFilter(), customer_id=world.a.customer.id).rows
    for row in own:
        assert {k: v for k, v in staff[row["id"]].items() if k not in STAFF_ONLY} == row


def test_cdr_totals_under_both_scopes(world, pg):
    everything = cdrs.totals(pg, cdrs.CdrFilter())
    assert (everything["calls"], everything["revenue"]) == (4, D("1.46"))
    assert {"cost", "margin", "unrated"} <= set(everything)
    own = cdrs.totals(pg, cdrs.CdrFilter(), customer_id=world.a.customer.id)
    assert (own["calls"], own["answered"], own["billsec"], own["revenue"]) == (3, 2, 95, D("0.06"))
    assert not {"cost", "margin", "unrated"} & set(own)
    staff_view_of_a = cdrs.totals(pg, cdrs.CdrFilter(customer_id=world.a.customer.id))
    assert {k: v for k, v in staff_view_of_a.items() if k not in cdrs.STAFF_ONLY_TOTALS} == own


def test_cdr_keyset_pages_under_a_scope_never_cross_into_another_customer(world, pg):
    a = world.a.customer.id
    first = cdrs.page(pg, cdrs.CdrFilter(), size=2, customer_id=a)
    second = cdrs.page(pg, cdrs.CdrFilter(), older_than=first.older.encode(), size=2, customer_id=a)
    assert second.older is None and second.newer is not None
    back = cdrs.page(pg, cdrs.CdrFilter(), newer_than=second.newer.encode(), size=2, customer_id=a)
    assert [r["id"] for r in back.rows] == [r["id"] for r in first.rows] and back.newer is None
    assert sorted(r["id"] for r in first.rows + second.rows) == sorted(world.a.cdr_ids)


def test_cdr_export_columns_follow_the_scope(world, pg):
    staff = cdrs.export(cdrs.CdrFilter())
    own = cdrs.export(cdrs.CdrFilter(), customer_id=world.a.customer.id)
    assert staff.header == cdrs.EXPORT_HEADER and "cost_amount" in staff.header
    assert own.header == cdrs.CUSTOMER_EXPORT_HEADER and not {"cost_amount", "provider", "margin"} & set(own.header)
    assert sum(len(b) for b in staff.batches(pg)) == 4
    own_rows = [r for b in own.batches(pg) for r in b]
    assert len(own_rows) == 3
    assert_no_b(repr(own_rows))


def test_cdr_filter_reads_days_in_its_zone(world, pg):
    """One call at 23:30 UTC: the 'UTC' day is that day, in Auckland it is the next."""
    from tests.selfcare.conftest import insert_cdr

    late = world.month_start.replace(day=1, hour=23, minute=30) - timedelta(days=40)
    insert_cdr(world.a.customer, world.a.sip, "33000000001", late, 10, "0.01")
    day = late.date()
    scope = {"customer_id": world.a.customer.id}
    assert cdrs.totals(pg, cdrs.CdrFilter(date_from=day, date_to=day), **scope)["calls"] == 1
    assert cdrs.totals(pg, cdrs.CdrFilter(date_from=day, date_to=day, zone="Pacific/Auckland"), **scope)["calls"] == 0
    nz_next = day + timedelta(days=1)
    assert cdrs.totals(pg, cdrs.CdrFilter(date_from=nz_next, date_to=nz_next, zone="Pacific/Auckland"),
                       **scope)["calls"] == 1
    with pytest.raises(cdrs.CdrError):
        cdrs.CdrFilter(zone="Mars/Olympus")


def test_cdr_filter_refuses_what_it_cannot_use():
    for bad in ({"prefix": "33%"}, {"answered": "maybe"}, {"status": "lost"}):
        with pytest.raises(cdrs.CdrError):
            cdrs.CdrFilter(**bad)
    assert cdrs.CdrFilter(answered="yes").answered is True and cdrs.CdrFilter(answered="").answered is None
    for token in ("garbage", "1.2.3", "99999999999999999999.1", "--5.1"):
        with pytest.raises(cdrs.CdrError):
            cdrs.Cursor.decode(token)


# ----------------------------------------------------------------------------- ledger

def test_ledger_is_one_customer_s_whatever_the_audience(world, pg):
    own, total = ledger.entries(pg, world.a.customer.id)
    staff, staff_total = ledger.entries(pg, world.a.customer.id, with_author=True)
    assert total == staff_total == 3
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in own] == [
        (r["kind"], r["amount"], r["balance_after"]) for r in staff]
    assert own[0]["balance_after"] == world.a.customer.balance == D("125.46")
    assert "created_by" in staff[0] and "created_by" not in own[0]      # operators' addresses are staff-only
    assert_no_b(repr(own))


def test_ledger_filter_refuses_an_unknown_group():
    with pytest.raises(ledger.LedgerError):
        ledger.LedgerFilter(group="everything")


# ----------------------------------------------------------------------------- funds, calls in progress

def test_funds_are_the_same_figure_for_staff_and_customer_pages(world, pg, admin_client):
    funds = customers.funds(pg, world.a.customer.id)
    assert (funds.holds, funds.calls_in_progress, funds.available) == (D("1.234567"), 1, D("124.225433"))
    page = admin_client.get(f"/admin/customers/{world.a.customer.id}").get_data(as_text=True)
    assert "124.225433 EUR" in page and "Calls in progress (1)" in page
    with pytest.raises(NotFound):
        customers.funds(pg, 2**62)


def test_calls_in_progress_under_both_scopes(world, pg):
    assert {h["call_uuid"] for h in customers.calls_in_progress(pg)} == {"live-a", "live-b-bravo-zq"}
    own = customers.calls_in_progress(pg, customer_id=world.a.customer.id)
    assert [h["call_uuid"] for h in own] == ["live-a"]
    assert customers.holds_summary(pg) == {"count": 2, "held": D("4.234567")}
    assert customers.holds_summary(pg, customer_id=world.a.customer.id) == {"count": 1, "held": D("1.234567")}


def test_stale_holds_still_reserve_money_but_are_not_live(world, pg):
    stale = hold(world.a.customer, world.a.ip, "stale-a", "2.000000", "33999")
    stale.expires_at = world.now - timedelta(minutes=1)
    db.session.flush()
    a = world.a.customer.id
    assert customers.funds(pg, a).calls_in_progress == 2           # as route_call counts them
    assert customers.holds_summary(pg, customer_id=a, include_stale=False)["count"] == 1
    assert [h["call_uuid"] for h in customers.calls_in_progress(pg, customer_id=a, include_stale=False)] == ["live-a"]


# ----------------------------------------------------------------------------- endpoints

def test_endpoints_under_both_scopes(world, pg):
    staff = {e["name"] for e in endpoints.names(pg)}
    assert {"alpha-office", "alpha-pbx", "bravo-zq-office", "bravo-zq-pbx"} <= staff
    assert [e["name"] for e in endpoints.names(pg, customer_id=world.a.customer.id)] == ["alpha-office", "alpha-pbx"]
    own = endpoints.listing(pg, customer_id=world.a.customer.id)
    assert [e["name"] for e in own] == ["alpha-office", "alpha-pbx"]       # SIP accounts first
    assert not any("password" in e for e in own)
    assert len(endpoints.listing(pg)) == len(staff)


def test_sip_account_scope(world):
    assert endpoints.sip_account(world.b.sip.id, customer_id=None).id == world.b.sip.id      # staff
    with pytest.raises(NotFound):
        endpoints.sip_account(world.b.sip.id, customer_id=world.a.customer.id)
    with pytest.raises(NotFound):
        endpoints.sip_account(world.b.ip.id, customer_id=None)        # an IP endpoint has no SIP password


def test_one_sip_password_policy_for_admins_and_customers(world, admin_client):
    """The password an admin's rotation generates passes the policy customers must meet."""
    response = admin_client.post(f"/admin/endpoints/{world.b.sip.id}/password", follow_redirects=True)
    db.session.expire_all()
    rotated = world.b.sip.password
    assert rotated != "secret-password" and rotated in response.get_data(as_text=True)
    assert endpoints.sip_password_problem(rotated, world.b.sip.username) is None


# ----------------------------------------------------------------------------- rates

def test_rates_apply_to_the_customer_asked_for(world, pg):
    a_prefixes = [r["prefix"] for r in rates.applied(pg, world.a.customer.id)[0]]
    b_prefixes = [r["prefix"] for r in rates.applied(pg, world.b.customer.id)[0]]
    assert a_prefixes == ["33", "336", "3361", "44"] and b_prefixes == ["999"]
    assert rates.for_number(pg, world.a.customer.id, "99912345678") is None
    assert rates.for_number(pg, world.b.customer.id, "+99912345678")["rate"] == D("0.700000")
    assert [c["name"] for c in rates.ratecards(pg, world.a.customer.id)] == ["alpha-retail", "alpha-extra"]
    export = rates.export(world.a.customer.id, "united")
    assert [r[0] for b in export.batches(pg) for r in b] == ["44"]
    assert re.fullmatch(r"[0-9]+/[0-9]+", [r for b in export.batches(pg) for r in b][0][5])


# ----------------------------------------------------------------------------- invoices

def test_issued_documents_under_both_scopes(world):
    from portal.invoices import services as invoices

    staff = db.session.scalars(invoices.issued(customer_id=None)).all()
    own = db.session.scalars(invoices.issued(customer_id=world.a.customer.id)).all()
    assert {i.customer_id for i in staff} == {world.a.customer.id, world.b.customer.id}
    assert [i.customer_id for i in own] == [world.a.customer.id]
    b_document = next(i for i in staff if i.customer_id == world.b.customer.id)
    assert invoices.issued_document(b_document.id, customer_id=None) is b_document
    with pytest.raises(NotFound):
        invoices.issued_document(b_document.id, customer_id=world.a.customer.id)
