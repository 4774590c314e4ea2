"""Call search by caller or destination number, destination names in the CDR list, and
the call detail page (routes, causes, money, hold, raw CDR)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from portal.cdrs import causes
from portal.cdrs.services import CdrError, CdrFilter, contains_window, number_condition, page
from tests import factories
from tests.billing.conftest import cdr_row, insert_cdr, world  # noqa: F401  (fixture)
from tests.ops.conftest import insert_cdr as insert_rated

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture()
def calls(pg, db_session):
    """acme: three calls with different numbers; beta: one."""
    w = factories.weight()
    factories.destination("33", w, name="France")
    factories.destination("336", w, name="France Mobile")
    factories.destination("46", w, name="Sweden")
    acme, beta = factories.customer(name="acme"), factories.customer(name="beta")
    ids = {
        "mobile": insert_rated(pg, customer_id=acme.id, caller_id="+46701234567", destination="33612345678",
                               sell_prefix="336", start_stamp=T0),
        "fixed": insert_rated(pg, customer_id=acme.id, caller_id="4686001234", destination="33123456789",
                              start_stamp=T0 + timedelta(minutes=1)),
        "plus": insert_rated(pg, customer_id=acme.id, caller_id="100", destination="+46812345670",
                             sell_prefix="46", start_stamp=T0 + timedelta(minutes=2), status="unrated"),
        "beta": insert_rated(pg, customer_id=beta.id, caller_id="+46709999999", destination="33698765432",
                             start_stamp=T0 + timedelta(minutes=3)),
    }
    return {"acme": acme, "beta": beta, **ids}


def found(pg, **kw) -> set[int]:
    return {r["id"] for r in page(pg, CdrFilter(**kw)).rows}


def test_number_search_by_prefix_with_or_without_plus(pg, calls):
    c = calls
    assert found(pg, number="3361", number_in="destination") == {c["mobile"]}
    assert found(pg, number="+3361", number_in="destination") == {c["mobile"]}
    assert found(pg, number="4681", number_in="destination") == {c["plus"]}       # stored as +46812345670
    assert found(pg, number="4670", number_in="caller") == {c["mobile"], c["beta"]}
    assert found(pg, number="+4670", number_in="caller", customer_id=c["acme"].id) == {c["mobile"]}
    assert found(pg, number="4670", number_in="destination") == set()
    assert found(pg, number="46") == {c["mobile"], c["fixed"], c["plus"], c["beta"]}   # caller or destination


def test_number_search_contains(pg, calls):
    c = calls
    assert found(pg, number="1234", match="contains", number_in="caller") == {c["mobile"], c["fixed"]}
    assert found(pg, number="2345", match="contains") == {c["mobile"], c["fixed"], c["plus"]}
    assert found(pg, number="6543", match="contains", number_in="destination") == {c["beta"]}
    assert found(pg, number="6543", match="contains", number_in="caller") == set()


@pytest.mark.parametrize("bad", ["33'; DROP TABLE billing.cdr; --", "abc", "33%", "3_3", "", "1" * 21, "++33"])
def test_number_is_validated_and_never_pasted_into_sql(bad):
    with pytest.raises(CdrError, match="digits"):
        number_condition(bad)


def test_number_condition_passes_digits_as_parameters_only():
    sql, params = number_condition("+3361", "either", "prefix")
    assert "3361" not in sql
    assert params == {"number_plain": "3361%", "number_plus": "+3361%"}
    sql, params = number_condition("3361", "caller", "contains", param=lambda n: f":{n}")
    assert sql == "(c.caller_id LIKE :number_any)" and params == {"number_any": "%3361%"}


def test_contains_window_is_bounded():
    today = date(2026, 3, 31)
    assert contains_window(None, None, today) == (date(2026, 3, 1), today)
    assert contains_window(date(2026, 2, 1), None, today) == (date(2026, 2, 1), date(2026, 3, 3))
    assert contains_window(None, date(2026, 2, 10), today) == (date(2026, 1, 11), date(2026, 2, 10))
    with pytest.raises(CdrError, match="at most 31 days"):
        contains_window(date(2026, 1, 1), date(2026, 3, 1), today)


def test_search_page_shows_matches_with_destination_names(admin_client, calls):
    html = admin_client.get("/admin/cdrs", query_string={"number": "+4670", "number_in": "caller"}).get_data(as_text=True)
    assert html.count("data-cdr-id=") == 2
    rows = {m: html.split(f'data-cdr-id="{calls[m]}"', 1)[1].split("</tr>", 1)[0] for m in ("mobile", "beta")}
    assert "France Mobile · prefix 336" in text_of(rows["mobile"])
    assert f'href="/admin/cdrs/{calls["mobile"]}"' in rows["mobile"]          # the detail page
    assert 'value="+4670"' in html
    bad = admin_client.get("/admin/cdrs", query_string={"number": "33'; drop"}).get_data(as_text=True)
    assert "digits, optionally with a leading +" in bad and "data-cdr-id=" not in bad


def test_contains_search_fills_its_window_and_refuses_a_longer_one(admin_client, calls):
    html = admin_client.get("/admin/cdrs", query_string={"number": "1234", "match": "contains", "date_from": "",
                                                         "date_to": "2026-03-10"}).get_data(as_text=True)
    assert 'value="2026-02-08"' in html and 'value="2026-03-10"' in html
    assert html.count("data-cdr-id=") == 3              # callers of mobile and fixed, destination of plus
    html = admin_client.get("/admin/cdrs", query_string={"number": "1234", "match": "contains",
                                                         "date_from": "2026-01-01", "date_to": "2026-03-10"}
                            ).get_data(as_text=True)
    assert "at most 31 days" in html and "data-cdr-id=" not in html
    totals = admin_client.get("/admin/cdrs/totals", query_string={"number": "1234", "match": "contains",
                                                                  "date_from": "2026-03-10",
                                                                  "date_to": "2026-03-10"}).get_json()
    assert totals["totals"]["calls"] == 3


# ----------------------------------------------------------------------------- call detail

def _rated_call(pg, world, **overrides) -> int:  # noqa: F811  (world is the billing fixture)
    row = cdr_row(world, billsec=187, destination="33612345678", caller_id_number="+46701234567",
                  billing_sell_prefix="336", billing_route_seq=3, hangup_cause="NORMAL_CLEARING",
                  sip_hangup_disposition="recv_bye", **overrides)
    insert_cdr(pg, row)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.fs_cdr SET hangup_cause_q850 = 16, "
                    "last_bridge_proto_specific_hangup_cause = 'sip:200', network_addr = '198.51.100.7' "
                    "WHERE uuid = %s", (row["uuid"],))
        cur.execute("SELECT id FROM billing.cdr WHERE uuid = %s", (row["uuid"],))
        return cur.fetchone()[0]


def test_call_detail_page(admin_client, pg, world):  # noqa: F811
    factories.destination("336", factories.weight(), name="France Mobile")
    cdr_id = _rated_call(pg, world)
    html = admin_client.get(f"/admin/cdrs/{cdr_id}").get_data(as_text=True)
    page_text = text_of(html)
    assert "+46701234567 → 33612345678 France Mobile" in page_text
    sell = text_of(html.split('data-section="sell"', 1)[1].split("</table>", 1)[0])
    # 187 s at 0.0800/min, 30/6 -> 192 s -> 0.256 EUR exactly, shown in full here
    assert "Rate 0.0800 EUR / min" in sell and "Increments 30/6" in sell and "Billed 192 s" in sell
    assert "Charge 0.256 EUR" in sell and "Ledger call -0.256 EUR" in sell
    cost = text_of(html.split('data-section="cost"', 1)[1].split("</table>", 1)[0])
    assert "Rate 0.0300 EUR / min" in cost and "Billed 187 s" in cost and "Cost 0.0935 EUR" in cost
    assert "Margin 0.1625 EUR (63.5 % of the charge)" in cost
    hangup = text_of(html.split('data-section="hangup"', 1)[1].split("</table>", 1)[0])
    assert "NORMAL_CLEARING — normal end of call" in hangup and "Q.850 16" in hangup
    assert "SIP 200 OK" in hangup and "the far end hung up (received BYE)" in hangup
    routes = html.split('data-section="routes"', 1)[1].split("</table>", 1)[0]
    assert [int(n) for n in re.findall(r'data-route="(\d+)"', routes)] == [1, 2, 3]
    assert text_of(routes).count("not recorded") == 2 and world.gateway.name in routes and "answered" in routes
    hold = text_of(html.split('data-section="hold"', 1)[1].split("</table>", 1)[0])
    assert "released when this CDR was billed" in hold
    assert "198.51.100.7" in page_text and 'data-section="raw"' in html
    assert admin_client.get("/admin/cdrs/999999999").status_code == 404


def test_call_detail_shows_overrun_and_no_hold_when_the_columns_exist(admin_client, pg, world):  # noqa: F811
    cdr_id = _rated_call(pg, world)
    before = admin_client.get(f"/admin/cdrs/{cdr_id}").get_data(as_text=True)
    # the columns come with 0026 (CONTRACT 1b): shown, not flagged, while they are 0 / false
    assert 'data-field="overrun_seconds"' in before and 'data-flag="overrun"' not in before
    with pg.cursor() as cur:   # rolled back with the test
        cur.execute("UPDATE billing.cdr SET overrun_seconds = 1, no_hold = true WHERE id = %s", (cdr_id,))
    html = admin_client.get(f"/admin/cdrs/{cdr_id}").get_data(as_text=True)
    assert 'data-flag="overrun"' in html and 'data-flag="no_hold"' in html
    hold = text_of(html.split('data-section="hold"', 1)[1].split("</table>", 1)[0])
    assert "Overrun 1 s beyond the hold, not billed" in hold and "billed in full without a hold" in hold


def test_causes_in_words():
    assert causes.cause("USER_BUSY") == {"name": "USER_BUSY", "q850": 17, "text": "the called party is busy"}
    assert causes.cause("SOMETHING_NEW")["q850"] is None
    assert causes.sip("sip:486") == {"code": 486, "reason": "Busy Here"}
    assert causes.sip(None) is None and causes.sip("none") is None
    assert causes.disposition("send_cancel") == "the switch cancelled the call before the answer"


# ----------------------------------------------------------------------------- self care

def test_selfcare_number_search_sees_only_its_own_calls(client, pg, calls):
    from tests.conftest import CUSTOMER_PASSWORD, login

    factories.user("ops@acme.example", CUSTOMER_PASSWORD, customer=calls["acme"])
    login(client, "ops@acme.example", CUSTOMER_PASSWORD)
    html = client.get("/my/cdrs", query_string={"number": "+4670", "number_in": "caller", "date_from": ""}
                      ).get_data(as_text=True)
    assert "33612345678" in html and "33698765432" not in html          # beta's caller matches too: not shown
    contains = client.get("/my/cdrs", query_string={"number": "2345", "match": "contains",
                                                    "date_from": "2026-03-01", "date_to": "2026-03-20"}
                          ).get_data(as_text=True)
    assert "33612345678" in contains and "33123456789" in contains
    wide = client.get("/my/cdrs", query_string={"number": "2345", "match": "contains",
                                                "date_from": "2026-01-01", "date_to": "2026-03-20"}).get_data(as_text=True)
    assert "at most 31 days" in wide
    bad = client.get("/my/cdrs", query_string={"number": "12ab"}).get_data(as_text=True)
    assert "Digits, optionally with a leading +." in bad
    csv_text = client.get("/my/cdrs.csv", query_string={"number": "4670", "number_in": "caller", "date_from": ""}
                          ).get_data(as_text=True)
    assert "33612345678" in csv_text and "33698765432" not in csv_text
