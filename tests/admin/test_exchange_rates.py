"""Exchange rates in the back office: list, add (new version closes the old), close,
CSV import (all or nothing, errors by line), export; the pairs routing lacks."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from portal.exchange import services
from portal.extensions import db
from portal.models import ExchangeRate
from tests import factories
from tests.admin.conftest import audit_rows, field_error, flashes

NOW = datetime.now(timezone.utc)


def rates(pair=("SEK", "EUR")):
    return list(db.session.scalars(select(ExchangeRate).where(
        ExchangeRate.from_currency == pair[0], ExchangeRate.to_currency == pair[1]).order_by(ExchangeRate.valid_from)))


def test_add_closes_the_version_it_replaces(admin_client, db_session):
    old = factories.exchange_rate("SEK", "EUR", "0.0850", NOW - timedelta(days=30))
    response = admin_client.post("/admin/exchange-rates/new", data={
        "from_currency": "sek", "to_currency": "EUR", "rate": "0.0871"})
    assert response.status_code == 302
    db.session.expire_all()
    first, second = rates()
    assert first.id == old.id and first.rate == Decimal("0.0850")     # history kept, not overwritten
    assert second.rate == Decimal("0.0871") and second.valid_to is None
    assert first.valid_to == second.valid_from and abs(second.valid_from - NOW) < timedelta(minutes=5)
    assert [r.action for r in audit_rows("exchange_rate")] == ["close", "create"]
    html = admin_client.get("/admin/exchange-rates?pair=SEK-EUR").get_data(as_text=True)
    assert "0.0871" in html and "0.085" in html and "valid now" in html and "ended" in html


def test_rate_is_exact_and_refused_when_it_cannot_be(admin_client, db_session):
    for value, message in [("0", "above 0"), ("-1", "above 0"), ("abc", "not a number"),
                           ("0.1234567890123", "more than 12 decimal places")]:
        html = admin_client.post("/admin/exchange-rates/new", data={
            "from_currency": "SEK", "to_currency": "EUR", "rate": value}).get_data(as_text=True)
        assert message in field_error(html, "rate"), value
    html = admin_client.post("/admin/exchange-rates/new", data={
        "from_currency": "EUR", "to_currency": "EUR", "rate": "1"}).get_data(as_text=True)
    assert "two different currencies" in field_error(html, "to_currency")
    assert admin_client.post("/admin/exchange-rates/new", data={
        "from_currency": "SEK", "to_currency": "EUR", "rate": "0.087123456789"}).status_code == 302
    assert rates()[0].rate == Decimal("0.087123456789")


def test_same_start_twice_is_refused_with_a_message(admin_client, db_session):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    factories.exchange_rate("SEK", "EUR", "0.0850", start)
    db.session.commit()   # the refused request rolls its transaction back
    html = admin_client.post("/admin/exchange-rates/new", data={
        "from_currency": "SEK", "to_currency": "EUR", "rate": "0.09", "valid_from": "2026-01-01T00:00"}).get_data(as_text=True)
    assert "already starts at 2026-01-01 00:00 (UTC)" in html
    assert len(rates()) == 1


def test_a_new_version_keeps_the_end_of_the_one_it_replaces(db_session):
    end = NOW + timedelta(days=30)
    factories.exchange_rate("SEK", "EUR", "0.0850", NOW - timedelta(days=30), end)
    added = services.add("SEK", "EUR", "0.0871", NOW + timedelta(days=1), actor="test")
    assert added.rate.valid_to == end and added.closed[0].valid_to == NOW + timedelta(days=1)
    assert not added.in_the_past


def test_close_ends_a_rate_and_removes_one_that_never_started(admin_client, db_session):
    current = factories.exchange_rate("SEK", "EUR", "0.0850", NOW - timedelta(days=30))
    scheduled = factories.exchange_rate("USD", "EUR", "0.92", NOW + timedelta(days=3))
    assert "Close the SEK→EUR rate 0.085" in admin_client.get(f"/admin/exchange-rates/{current.id}/close").get_data(as_text=True)
    end = (NOW + timedelta(days=1)).replace(second=0, microsecond=0)
    assert admin_client.post(f"/admin/exchange-rates/{current.id}/close",
                             data={"at": end.strftime("%Y-%m-%dT%H:%M")}).status_code == 302
    assert admin_client.post(f"/admin/exchange-rates/{scheduled.id}/close", data={}).status_code == 302
    db.session.expire_all()
    assert db.session.get(ExchangeRate, current.id).valid_to == end
    assert db.session.get(ExchangeRate, scheduled.id) is None
    db.session.commit()
    html = admin_client.post(f"/admin/exchange-rates/{current.id}/close",
                             data={"at": (end + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}).get_data(as_text=True)
    assert "already ends at" in html


def upload(client, text: str):
    return client.post("/admin/exchange-rates/import", data={"file": (io.BytesIO(text.encode()), "rates.csv")},
                       content_type="multipart/form-data")


def test_csv_import_adds_versions_in_order(admin_client, db_session):
    response = upload(admin_client, "from_currency,to_currency,rate,valid_from\n"
                                    "SEK,EUR,0.0880,2026-02-01\n"
                                    "SEK,EUR,0.0871,2026-01-01\n"
                                    "USD,EUR,0.92,2026-01-01 06:00\n")
    assert response.status_code == 302
    db.session.expire_all()
    jan, feb = rates()
    assert (jan.rate, jan.valid_to, feb.rate, feb.valid_to) == \
        (Decimal("0.0871"), datetime(2026, 2, 1, tzinfo=timezone.utc), Decimal("0.0880"), None)
    assert rates(("USD", "EUR"))[0].valid_from == datetime(2026, 1, 1, 6, tzinfo=timezone.utc)
    assert audit_rows("exchange_rate", "import")[0].details["rates"] == 3


def test_csv_import_is_all_or_nothing_with_errors_by_line(admin_client, db_session):
    response = upload(admin_client, "from,to,rate,valid_from,valid_to\n"
                                    "SEK,EUR,0.0871,2026-01-01,\n"
                                    "SEK,SEK,1,2026-01-01,\n"
                                    "SEK,EUR,zero,2026-03-01,\n"
                                    "US,EUR,0.9,2026-01-01,\n"
                                    "USD,EUR,0.9,2026-05-01,2026-04-01\n"
                                    "SEK,EUR,0.0872,2026-01-01,\n")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert any("Nothing was imported" in m for m in flashes(html))
    for line, message in [(3, "the same currency on both sides"), (4, "not a number"), (5, "not a currency"),
                          (6, "must be after valid_from"), (7, "already on line 2")]:
        assert f'<td class="num">{line}</td>' in html and message in html, (line, message)
    assert rates() == [] and rates(("USD", "EUR")) == []


def test_csv_import_without_the_columns_says_which(admin_client, db_session):
    html = upload(admin_client, "pair,value\nSEK/EUR,0.08\n").get_data(as_text=True)
    assert "missing columns: from_currency, to_currency, rate, valid_from" in html


def test_export_lists_every_rate(admin_client, db_session):
    factories.exchange_rate("SEK", "EUR", "0.0871", datetime(2026, 1, 1, tzinfo=timezone.utc))
    text = admin_client.get("/admin/exchange-rates.csv").get_data(as_text=True)
    assert text.splitlines() == ["from_currency,to_currency,rate,valid_from,valid_to",
                                 "SEK,EUR,0.0871,2026-01-01T00:00:00+00:00,"]
    # and it imports back
    db.session.execute(ExchangeRate.__table__.delete())
    assert upload(admin_client, text).status_code == 302
    assert [r.rate for r in rates()] == [Decimal("0.0871")]


def test_missing_pairs_are_listed_with_a_link(admin_client, db_session):
    card = factories.ratecard(currency="EUR")
    factories.customer(name="acme", ratecards=[card])
    prov = factories.provider(name="carrier_sek", currency="SEK")
    factories.gateway(prov)
    html = admin_client.get("/admin/exchange-rates").get_data(as_text=True)
    assert "SEK→EUR" in html and "carrier_sek" in html and "/admin/exchange-rates/new?from=SEK&amp;to=EUR" in html
    factories.exchange_rate("SEK", "EUR", "0.0871", NOW - timedelta(days=1))
    assert "data-missing-pairs" not in admin_client.get("/admin/exchange-rates").get_data(as_text=True)


def test_csrf_is_required(app, admin_client, db_session):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = admin_client.post("/admin/exchange-rates/new", data={
            "from_currency": "SEK", "to_currency": "EUR", "rate": "0.0871"})
        assert response.status_code == 400 and rates() == []
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_customer_and_ratecard_forms_keep_ratecards_in_the_customers_currency(admin_client, db_session):
    from portal.models import Customer, Ratecard
    usd = factories.ratecard("usd_card", currency="USD")
    eur = factories.ratecard("eur_card", currency="EUR")
    form = {"name": "acme", "billing_type": "prepaid", "currency": "EUR", "credit_limit": "0", "lcr_strategy": "cost",
            "ratecard_1": str(usd.id), "ratecard_2": "0", "ratecard_3": "0"}
    html = admin_client.post("/admin/customers/new", data=form).get_data(as_text=True)
    assert "Ratecard usd_card is in USD" in field_error(html, "currency")
    assert db.session.scalar(select(Customer).where(Customer.name == "acme")) is None
    assert admin_client.post("/admin/customers/new", data={**form, "ratecard_1": str(eur.id)}).status_code == 302
    html = admin_client.post(f"/admin/ratecards/{eur.id}/edit", data={"name": "eur_card", "currency": "USD"}).get_data(as_text=True)
    assert "Used by acme, who pay in another currency" in field_error(html, "currency")
    db.session.expire_all()
    assert db.session.get(Ratecard, eur.id).currency == "EUR"
