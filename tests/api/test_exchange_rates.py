"""Exchange rates in the API: the back office's services over JSON (versions of a pair,
closing, the CSV import's all-or-nothing checks), rates as exact 12-decimal strings,
the operator's data (a customer token gets 403/404), every write audited with the
token as the actor. Each answer is checked against the OpenAPI document."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, ExchangeRate
from tests import factories

from .conftest import fields_of, problem_of

NOW = datetime.now(timezone.utc)
JAN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _pair(from_currency="SEK", to_currency="EUR") -> list[ExchangeRate]:
    db.session.expire_all()
    return list(db.session.scalars(select(ExchangeRate).where(
        ExchangeRate.from_currency == from_currency, ExchangeRate.to_currency == to_currency)
        .order_by(ExchangeRate.valid_from)))


def _audit(action: str | None = None) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.entity == "exchange_rate").order_by(AuditLog.id)
    if action:
        query = query.where(AuditLog.action == action)
    return list(db.session.scalars(query))


def test_add_a_version_closes_the_one_it_replaces_and_is_audited(staff, world):
    old = factories.exchange_rate("SEK", "EUR", "0.0850", JAN)
    db.session.commit()
    created = staff.post("/api/v1/exchange-rates", json={"from_currency": "SEK", "to_currency": "EUR",
                                                         "rate": "0.087123456789"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/exchange-rates/{body['id']}")
    # exact, 12 decimals, a string
    assert body["rate"] == "0.087123456789" and body["valid_to"] is None
    assert body["closed_ids"] == [old.id] and body["in_the_past"] is False
    assert body["created_by"].startswith("api:test write#")
    first, second = _pair()
    assert first.id == old.id and first.rate == Decimal("0.085") and first.valid_to == second.valid_from
    assert abs(second.valid_from - NOW) < timedelta(minutes=5)
    close_row, create_row = _audit()
    assert (close_row.action, close_row.entity_id, create_row.action, create_row.entity_id) == \
        ("close", str(old.id), "create", str(body["id"]))
    assert create_row.actor == close_row.actor == body["created_by"]
    assert create_row.details["rate"] == "0.087123456789"
    got = staff.get(f"/api/v1/exchange-rates/{old.id}").get_json()
    assert got["rate"] == "0.085000000000" and got["valid_to"] == body["valid_from"]


def test_a_start_in_the_past_says_so_and_a_date_is_midnight_of_the_operator(staff, world, app):
    body = staff.post("/api/v1/exchange-rates", json={"from_currency": "usd", "to_currency": "EUR", "rate": "0.92",
                                                      "valid_from": "2026-03-01", "valid_to": "2026-04-01T12:00Z"})
    assert body.status_code == 201, body.get_json()
    body = body.get_json()
    assert body["from_currency"] == "USD" and body["in_the_past"] is True and body["rate"] == "0.920000000000"
    (row,) = _pair("USD", "EUR")
    from portal.localtime import local_tz
    assert row.valid_from == datetime(2026, 3, 1, tzinfo=local_tz())
    assert row.valid_to == datetime(2026, 4, 1, 12, tzinfo=timezone.utc)


def test_refusals_name_the_field(staff, world):
    factories.exchange_rate("SEK", "EUR", "0.0850", JAN)
    db.session.commit()
    base = {"from_currency": "SEK", "to_currency": "EUR", "rate": "0.09"}
    cases = [({"rate": 0.09}, "rate", "Not a valid string"),                   # a JSON number
             ({"rate": "0"}, "rate", "above 0"),
             ({"rate": "-1"}, "rate", "above 0"),
             ({"rate": "abc"}, "rate", "not a number"),
             ({"rate": "0.1234567890123"}, "rate", "more than 12 decimal places"),
             ({"rate": "1000000000000"}, "rate", "too large"),
             ({"from_currency": "EURO"}, "from_currency", "three letters"),
             ({"to_currency": "1AB"}, "to_currency", "three letters"),
             ({"valid_from": "yesterday"}, "valid_from", "not a date"),
             ({"surprise": 1}, "surprise", "Unknown field")]
    for change, field, words in cases:
        problem = problem_of(staff.post("/api/v1/exchange-rates", json=base | change), 422, "validation_failed")
        assert fields_of(problem) == {field}, (change, problem)
        assert words in problem["errors"][0]["detail"], (change, problem)
    missing = problem_of(staff.post("/api/v1/exchange-rates", json={"from_currency": "SEK"}), 422)
    assert fields_of(missing) == {"to_currency", "rate"}
    # the rules of the service (the back office's), with their field
    same = problem_of(staff.post("/api/v1/exchange-rates", json=base | {"to_currency": "SEK"}), 422, "refused")
    assert fields_of(same) == {"to_currency"} and "same" in same["detail"]
    order = problem_of(staff.post("/api/v1/exchange-rates", json=base | {
        "valid_from": "2026-06-01T00:00Z", "valid_to": "2026-05-01T00:00Z"}), 422, "refused")
    assert fields_of(order) == {"valid_to"}
    taken = problem_of(staff.post("/api/v1/exchange-rates", json=base | {"valid_from": "2026-01-01T00:00:00Z"}),
                       409, "conflict")
    assert fields_of(taken) == {"valid_from"} and "already starts" in taken["detail"]
    assert [r.rate for r in _pair()] == [Decimal("0.085")]    # nothing written by any of them
    assert _audit() == []


def test_list_filters_and_pages(staff, world):
    sek_old = factories.exchange_rate("SEK", "EUR", "0.0850", JAN, JAN + timedelta(days=31))
    sek_new = factories.exchange_rate("SEK", "EUR", "0.0871", JAN + timedelta(days=31))
    usd = factories.exchange_rate("USD", "EUR", "0.92", JAN)
    eur_sek = factories.exchange_rate("EUR", "SEK", "11.5", JAN)
    later = factories.exchange_rate("USD", "EUR", "0.95", NOW + timedelta(days=10))
    # an overlap (a version added with an earlier start keeps running): the later start wins
    overlap = factories.exchange_rate("USD", "GBP", "0.79", JAN)
    overlap_new = factories.exchange_rate("USD", "GBP", "0.80", JAN + timedelta(days=10), JAN + timedelta(days=20))

    def ids(query: str) -> list[int]:
        return [r["id"] for r in staff.get(f"/api/v1/exchange-rates{query}").get_json()["items"]]

    everything = ids("")
    assert everything == sorted(everything) and len(everything) == 7
    assert ids("?currency=SEK") == [sek_old.id, sek_new.id, eur_sek.id]
    assert ids("?from_currency=USD&to_currency=EUR") == [usd.id, later.id]
    assert ids("?to_currency=SEK") == [eur_sek.id]
    assert ids("?as_of=2026-01-15") == [sek_old.id, usd.id, eur_sek.id, overlap_new.id]
    assert ids("?as_of=2026-02-15T00:00:00%2B00:00&currency=SEK") == [sek_new.id, eur_sek.id]
    assert ids("?as_of=2026-01-25T00:00:00Z&from_currency=USD") == [usd.id, overlap.id]
    assert ids("?state=future") == [later.id]
    assert ids("?state=ended") == [sek_old.id, overlap_new.id]
    first = staff.get("/api/v1/exchange-rates?limit=3").get_json()
    assert [r["id"] for r in first["items"]] == everything[:3] and first["next_cursor"] == str(everything[2])
    rest = staff.get(f"/api/v1/exchange-rates?limit=10&cursor={first['next_cursor']}").get_json()
    assert [r["id"] for r in rest["items"]] == everything[3:] and rest["next_cursor"] is None
    assert rest["items"][-1]["rate"] == "0.800000000000"
    bad = problem_of(staff.get("/api/v1/exchange-rates?currency=euro&as_of=soon&state=old"), 422,
                     "validation_failed")
    assert fields_of(bad) == {"currency", "as_of", "state"}
    problem_of(staff.get("/api/v1/exchange-rates/2147483647"), 404, "not_found")


def test_close_ends_a_rate_or_removes_one_that_has_not_started(staff, world):
    running = factories.exchange_rate("SEK", "EUR", "0.0850", JAN)
    scheduled = factories.exchange_rate("USD", "EUR", "0.95", NOW + timedelta(days=10))
    db.session.commit()
    closed = staff.post(f"/api/v1/exchange-rates/{running.id}/close", json={})
    assert closed.status_code == 200, closed.get_json()
    end = datetime.fromisoformat(closed.get_json()["valid_to"])
    assert abs(end - NOW) < timedelta(minutes=5)
    again = problem_of(staff.post(f"/api/v1/exchange-rates/{running.id}/close", json={}), 409, "conflict")
    assert fields_of(again) == {"at"} and "already ends" in again["detail"]
    before_start = problem_of(staff.post(f"/api/v1/exchange-rates/{running.id}/close",
                                         json={"at": "2025-12-01T00:00Z"}), 422, "refused")
    assert fields_of(before_start) == {"at"}
    problem_of(staff.post(f"/api/v1/exchange-rates/{running.id}/close", json={"at": "tomorrow"}), 422,
               "validation_failed")
    gone = staff.post(f"/api/v1/exchange-rates/{scheduled.id}/close", json={"at": None})
    assert gone.status_code == 204 and gone.get_data() == b""
    problem_of(staff.get(f"/api/v1/exchange-rates/{scheduled.id}"), 404)
    problem_of(staff.post("/api/v1/exchange-rates/2147483647/close", json={}), 404, "not_found")
    assert [(a.action, a.entity_id) for a in _audit()] == [("close", str(running.id)), ("delete", str(scheduled.id))]
    assert all(a.actor.startswith("api:test write#") for a in _audit())


def test_import_is_all_or_nothing_and_names_the_bad_record(staff, world):
    factories.exchange_rate("SEK", "EUR", "0.0850", JAN)
    db.session.commit()
    count = db.session.scalar(select(func.count()).select_from(ExchangeRate))
    good = {"from_currency": "SEK", "to_currency": "EUR", "rate": "0.0871", "valid_from": "2026-02-01"}
    bad = problem_of(staff.post("/api/v1/exchange-rates/import", json={"rates": [
        good,
        {"from_currency": "USD", "to_currency": "EUR", "rate": "0,92", "valid_from": "2026-02-01"},   # fine (a comma)
        {"from_currency": "USD", "to_currency": "EUR", "rate": "-1", "valid_from": "2026-03-01"},
        {"from_currency": "EUR", "to_currency": "EUR", "rate": "1", "valid_from": "2026-02-01"},
        {"from_currency": "GBP", "to_currency": "EUR", "rate": "1.17", "valid_from": "2026-02-01",
         "valid_to": "2026-01-01"},
        dict(good)]}), 422, "refused")
    assert fields_of(bad) == {"rates[2].rate", "rates[3].to_currency", "rates[4].valid_to", "rates[5].valid_from"}
    duplicate = next(e for e in bad["errors"] if e["field"] == "rates[5].valid_from")
    assert "already on rates[0]" in duplicate["detail"]
    assert bad["detail"].startswith("Nothing was imported: rates[2].rate:")
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == count
    # a record refused only when added (its pair and start exist): nothing of the others is kept
    clash = problem_of(staff.post("/api/v1/exchange-rates/import", json={"rates": [
        good, {"from_currency": "SEK", "to_currency": "EUR", "rate": "0.09", "valid_from": "2026-01-01T00:00Z"}]}),
        422, "refused")
    assert fields_of(clash) == {"rates[1].valid_from"} and "already starts" in clash["detail"]
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == count
    typed = problem_of(staff.post("/api/v1/exchange-rates/import", json={"rates": [good | {"rate": 0.0871}]}), 422,
                       "validation_failed")
    assert fields_of(typed) == {"rates[0].rate"}
    problem_of(staff.post("/api/v1/exchange-rates/import", json={"rates": []}), 422, "validation_failed")
    assert _audit() == []

    done = staff.post("/api/v1/exchange-rates/import", json={"rates": [
        good, {"from_currency": "SEK", "to_currency": "EUR", "rate": "0.0880", "valid_from": "2026-03-01"},
        {"from_currency": "USD", "to_currency": "EUR", "rate": "0.92", "valid_from": "2026-02-01", "valid_to": None}]})
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert (result["imported"], result["closed"], result["in_the_past"]) == (3, 2, True)
    assert [(r["from_currency"], r["rate"]) for r in result["items"]] == \
        [("SEK", "0.087100000000"), ("SEK", "0.088000000000"), ("USD", "0.920000000000")]
    assert [r.rate for r in _pair()] == [Decimal("0.085"), Decimal("0.0871"), Decimal("0.088")]
    assert [r.valid_to is None for r in _pair()] == [False, False, True]
    actions = [a.action for a in _audit()]
    assert actions.count("create") == 3 and actions.count("close") == 2 and actions[-1] == "import"
    assert _audit("import")[0].details == {"rates": 3, "closed": 2}
    assert {a.actor for a in _audit()} == {result["items"][0]["created_by"]}


def test_the_import_shares_the_back_office_checks(staff, world):
    """The same records as a CSV file for the back office's import and as JSON for the
    API: the same refusals, from the same code."""
    from portal.exchange import services

    lines = [("SEK", "EUR", "0.0871", "2026-02-01", ""), ("SEK", "EUR", "0.0871x", "2026-02-02", ""),
             ("usd", "usd", "1", "2026-02-01", ""), ("GBP", "EUR", "1.2", "", "")]
    content = "from_currency,to_currency,rate,valid_from,valid_to\n" + "\n".join(",".join(line) for line in lines)
    try:
        services.read_csv(content)
    except services.ExchangeRateError as exc:
        from_file = [(e["line"] - 2, e["column"], e["message"]) for e in exc.errors]
    problem = problem_of(staff.post("/api/v1/exchange-rates/import", json={"rates": [
        dict(zip(services.CSV_COLUMNS, line)) for line in lines]}), 422, "refused")
    from_api = [(int(e["field"][6]), e["field"].partition(".")[2], e["detail"]) for e in problem["errors"]]
    assert from_api == from_file and len(from_api) == 3


def test_scopes_read_reads_and_customer_tokens_get_nothing(reader, customer_a, world):
    rate = factories.exchange_rate("SEK", "EUR", "0.0850", JAN)
    db.session.commit()
    assert reader.get("/api/v1/exchange-rates").get_json()["items"][0]["id"] == rate.id
    assert reader.get(f"/api/v1/exchange-rates/{rate.id}").get_json()["rate"] == "0.085000000000"
    body = {"from_currency": "USD", "to_currency": "EUR", "rate": "0.9"}
    problem_of(reader.post("/api/v1/exchange-rates", json=body), 403, "insufficient_scope")
    problem_of(reader.post(f"/api/v1/exchange-rates/{rate.id}/close", json={}), 403, "insufficient_scope")
    problem_of(reader.post("/api/v1/exchange-rates/import", json={"rates": [body | {"valid_from": "2026-01-01"}]}),
               403, "insufficient_scope")
    # the operator's data, as providers are: 403 without an id, 404 with one
    problem_of(customer_a.get("/api/v1/exchange-rates"), 403, "insufficient_scope")
    problem_of(customer_a.post("/api/v1/exchange-rates", json=body), 403, "insufficient_scope")
    problem_of(customer_a.post("/api/v1/exchange-rates/import", json={"rates": []}), 403, "insufficient_scope")
    problem_of(customer_a.get(f"/api/v1/exchange-rates/{rate.id}"), 404, "not_found")
    problem_of(customer_a.post(f"/api/v1/exchange-rates/{rate.id}/close", json={}), 404, "not_found")
    assert _pair()[0].valid_to is None and _pair("USD", "EUR") == [] and _audit() == []
