"""Rate deck import: validation by line and column, all-or-nothing, diff, effective
dates, removed prefixes, export; through the service and through the pages."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from portal.models import RateImport
from portal.rateimport import services
from portal.rateimport.services import ImportOptions, RateImportError
from tests import factories

EFF = datetime(2026, 4, 1, tzinfo=timezone.utc)
LATER = datetime(2026, 5, 1, tzinfo=timezone.utc)

GOOD = "prefix,rate,connect_fee,increment,destination\n33,0.0200,0,60/60,France\n336,0.0800,0.01,30/6,France Mobile\n44,0.0150,,1/1,UK\n"
BAD = "prefix,rate,connect_fee,increment,destination\n33,0.0200,0,60/60,France\n336,0.08O0,0,30/6,France Mobile\n44,0.0150,,1/1,UK\n"
OPTS = ImportOptions(mapping={"prefix": 0, "rate": 1, "connect_fee": 2, "increment": 3, "destination_name": 4})
REPLACE = ImportOptions(mapping=dict(OPTS.mapping), mode="replace")


def deck(tmp_path, text, name="deck.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def current_rates(pg, card_id, at):
    with pg.cursor() as cur:
        cur.execute("""SELECT prefix, rate, connect_fee, increment_first, increment_next FROM billing.rates
                        WHERE ratecard_id = %s AND (valid_from IS NULL OR valid_from <= %s)
                          AND (valid_to IS NULL OR valid_to > %s) ORDER BY prefix""", (card_id, at, at))
        return {r[0]: r[1:] for r in cur.fetchall()}


def count_rates(pg, card_id):
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.rates WHERE ratecard_id = %s", (card_id,))
        return cur.fetchone()[0]


def test_good_deck_imports_exact_values(db_session, pg, tmp_path):
    card = factories.ratecard("deck1")
    result = services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    assert result.counts == {"new": 3}
    rates = current_rates(pg, card.id, EFF)
    assert rates == {"33": (Decimal("0.020000"), Decimal("0"), 60, 60),
                     "336": (Decimal("0.080000"), Decimal("0.010000"), 30, 6),
                     "44": (Decimal("0.015000"), Decimal("0"), 1, 1)}
    assert current_rates(pg, card.id, datetime(2026, 3, 31, tzinfo=timezone.utc)) == {}


def test_one_bad_line_imports_nothing_and_names_line_and_column(db_session, pg, tmp_path):
    card = factories.ratecard("deck2")
    with pytest.raises(RateImportError) as err:
        services.apply(pg, "ratecard", card.id, deck(tmp_path, BAD), OPTS, EFF)
    assert err.value.errors == [{"line": 3, "column": "rate", "value": "0.08O0",
                                 "message": "a rate is a decimal number like 0.0125 (at most 6 decimals, no sign)"}]
    assert "line 3, column rate" in str(err.value)
    assert count_rates(pg, card.id) == 0
    # Fixed file: imports.
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    assert count_rates(pg, card.id) == 3


def test_every_kind_of_error_is_listed(db_session, pg, tmp_path):
    card = factories.ratecard("deck3")
    text = ("prefix,rate,connect_fee,increment,destination\n"
            "33x,0.02,0,60/60,A\n"        # 2 prefix
            "34,-1,0,60/60,B\n"            # 3 rate
            "35,0.02,abc,60/60,C\n"        # 4 connect fee
            "36,0.02,0,60,D\n"             # 5 increment
            "37,0.02,0,0/6,E\n"            # 6 increment
            "38,0.02\n"                    # 7 short line
            "39,0.1234567,0,1/1,F\n"       # 8 too many decimals
            "34,0.02,0,1/1,G\n")           # 9 duplicate of line 3
    with pytest.raises(RateImportError) as err:
        services.preview(pg, "ratecard", card.id, deck(tmp_path, text), OPTS, EFF)
    got = [(e["line"], e["column"]) for e in err.value.errors]
    assert got == [(2, "prefix"), (3, "rate"), (4, "connect_fee"), (5, "increment"), (6, "increment"),
                   (7, "connect_fee"), (8, "rate"), (9, "prefix")]
    assert "already on line 3" in err.value.errors[-1]["message"]


def test_preview_changes_nothing_and_counts_changes(db_session, pg, tmp_path):
    card = factories.ratecard("deck4")
    factories.sell_rate(card, "33", "0.0200")                 # unchanged
    factories.sell_rate(card, "336", "0.0700", increment="30/6")  # changed
    factories.sell_rate(card, "49", "0.0300")                 # removed
    before = count_rates(pg, card.id)
    result = services.preview(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    assert result.counts == {"unchanged": 1, "changed": 1, "kept": 1, "new": 1}      # update mode: 49 is kept
    assert result.samples["changed"][0]["old_rate"] == "0.070000"
    assert result.samples["changed"][0]["new_rate"] == "0.080000"
    assert "kept" not in result.samples
    result = services.preview(pg, "ratecard", card.id, deck(tmp_path, GOOD), REPLACE, EFF)
    assert result.counts == {"unchanged": 1, "changed": 1, "removed": 1, "new": 1}
    assert result.samples["removed"][0]["prefix"] == "49"
    assert count_rates(pg, card.id) == before
    # The preview's temp tables are gone: a second preview works.
    services.preview(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)


def test_effective_date_closes_old_rates_and_removed_prefixes(db_session, pg, tmp_path):
    card = factories.ratecard("deck5")
    factories.sell_rate(card, "33", "0.0200")
    factories.sell_rate(card, "336", "0.0700", increment="30/6")
    factories.sell_rate(card, "49", "0.0300")
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), REPLACE, EFF, confirm_removed=1)
    before = datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc)
    assert {p: r[0] for p, r in current_rates(pg, card.id, before).items()} == {
        "33": Decimal("0.020000"), "336": Decimal("0.070000"), "49": Decimal("0.030000")}
    assert {p: r[0] for p, r in current_rates(pg, card.id, EFF).items()} == {
        "33": Decimal("0.020000"), "336": Decimal("0.080000"), "44": Decimal("0.015000")}
    with pg.cursor() as cur:
        cur.execute("SELECT valid_to FROM billing.rates WHERE ratecard_id = %s AND prefix IN ('336', '49') "
                    "AND valid_from IS NULL", (card.id,))
        assert [r[0] for r in cur.fetchall()] == [EFF, EFF]
        # the unchanged rate keeps its row, open-ended
        cur.execute("SELECT count(*), bool_and(valid_to IS NULL) FROM billing.rates WHERE ratecard_id = %s AND prefix = '33'", (card.id,))
        assert cur.fetchone() == (1, True)


def test_reimport_at_same_effective_date_replaces(db_session, pg, tmp_path):
    card = factories.ratecard("deck6")
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD.replace("0.0150", "0.0160"), "v2.csv"), OPTS, EFF)
    assert current_rates(pg, card.id, EFF)["44"][0] == Decimal("0.016000")
    assert count_rates(pg, card.id) == 3


def test_future_scheduled_rates_refuse_an_earlier_import(db_session, pg, tmp_path):
    card = factories.ratecard("deck7")
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, LATER)
    with pytest.raises(RateImportError, match="already scheduled"):
        services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    assert count_rates(pg, card.id) == 3


def test_provider_deck_with_separate_increment_columns_and_destinations(db_session, pg, tmp_path):
    prov = factories.provider("deckprov")
    weight = factories.weight("imported")
    text = "code;price;first;next;blocked;name\n+3912;0.011;1;1;no;Italy Fixed\n3931;0.02;60;60;yes;Italy Mobile\n"
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1, "increment_first": 2, "increment_next": 3, "blocked": 4,
                                  "destination_name": 5}, delimiter=";", weight_id=weight.id)
    result = services.apply(pg, "provider", prov.id, deck(tmp_path, text), opts, EFF)
    assert result.counts == {"new": 2, "destinations_added": 2}
    with pg.cursor() as cur:
        cur.execute("SELECT prefix, rate, increment_first, increment_next, blocked FROM billing.provider_rates "
                    "WHERE provider_id = %s ORDER BY prefix", (prov.id,))
        assert cur.fetchall() == [("3912", Decimal("0.011000"), 1, 1, False), ("3931", Decimal("0.020000"), 60, 60, True)]
        cur.execute("SELECT name FROM billing.destinations WHERE prefix = '3912'")
        assert cur.fetchone() == ("Italy Fixed",)


def test_mapping_must_name_prefix_and_rate(db_session, pg, tmp_path):
    card = factories.ratecard("deck8")
    with pytest.raises(RateImportError, match="Rate per minute"):
        services.preview(pg, "ratecard", card.id, deck(tmp_path, GOOD), ImportOptions(mapping={"prefix": 0}), EFF)


def test_export_streams_current_rates(db_session, pg, tmp_path):
    card = factories.ratecard("deck9")
    factories.sell_rate(card, "33", "0.0200")
    factories.sell_rate(card, "34", "0.0300", valid_to=datetime(2020, 1, 1, tzinfo=timezone.utc),
                        valid_from=datetime(2019, 1, 1, tzinfo=timezone.utc))
    chunks = list(services.export_rows(pg, "ratecard", card.id, batch=1))
    text = "".join(chunks)
    assert text == "prefix,rate,connect_fee,min_duration,increment,valid_from,valid_to,blocked\n33,0.020000,0.000000,0,60/60,,,no\n"
    assert len(chunks) >= 2


def test_export_then_reimport_is_unchanged(db_session, pg, tmp_path):
    card = factories.ratecard("deck10")
    services.apply(pg, "ratecard", card.id, deck(tmp_path, GOOD), OPTS, EFF)
    text = "".join(services.export_rows(pg, "ratecard", card.id, at=EFF))
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1, "connect_fee": 2, "min_duration": 3, "increment": 4,
                                  "blocked": 7})
    result = services.preview(pg, "ratecard", card.id, deck(tmp_path, text, "export.csv"), opts, EFF)
    assert result.counts == {"unchanged": 3}


# ----------------------------------------------------------------------------- pages

def _upload(client, target, text, name="deck.csv"):
    return client.post("/admin/rate-imports/new", data={
        "target": target, "delimiter": "auto", "has_header": "y",
        "deck": (io.BytesIO(text.encode()), name)}, content_type="multipart/form-data")


def _mapping_form(**extra):
    data = {f"map_{n}": "" for n in services.FIELD_NAMES}
    data.update({"map_prefix": "0", "map_rate": "1", "map_connect_fee": "2", "map_increment": "3",
                 "map_destination_name": "4", "effective_from": "2026-04-01T00:00", "default_increment": "60/60",
                 "weight_id": ""})
    data.update(extra)
    return data


def test_pages_bad_deck_then_fixed_deck(admin_client, db_session, pg, app, tmp_path):
    app.instance_path  # noqa: B018
    card = factories.ratecard("pagecard")
    response = _upload(admin_client, f"ratecard:{card.id}", BAD)
    assert response.status_code == 302
    job = db_session.scalars(db_session.query(RateImport).filter_by(ratecard_id=card.id).statement).one()
    page = admin_client.get(response.headers["Location"])
    assert b"1: prefix" in page.data and b"0.08O0" in page.data
    response = admin_client.post(f"/admin/rate-imports/{job.id}/mapping", data=_mapping_form())
    assert response.status_code == 302
    page = admin_client.get(f"/admin/rate-imports/{job.id}").get_data(as_text=True)
    assert "Nothing was imported" in page and "0.08O0" in page and ">3<" in page
    assert count_rates(pg, card.id) == 0
    # Running an invalid job is refused.
    admin_client.post(f"/admin/rate-imports/{job.id}/run")
    assert count_rates(pg, card.id) == 0

    response = _upload(admin_client, f"ratecard:{card.id}", GOOD, "fixed.csv")
    job2_url = response.headers["Location"].replace("/mapping", "")
    admin_client.post(response.headers["Location"], data=_mapping_form())
    page = admin_client.get(job2_url).get_data(as_text=True)
    assert 'data-count="new">3<' in page and "Import 3 rates" in page
    assert count_rates(pg, card.id) == 0
    admin_client.post(job2_url + "/run")
    page = admin_client.get(job2_url).get_data(as_text=True)
    assert "Imported 3 lines" in page
    assert count_rates(pg, card.id) == 3
    status = admin_client.get(job2_url + "/status").get_json()
    assert status["status"] == "done" and status["done"] is True
    response = admin_client.get(f"/admin/rate-imports?source=ratecard:{card.id}")
    assert response.headers["Location"] == f"/admin/rate-exports/ratecard/{card.id}.csv"
    export = admin_client.get(response.headers["Location"])
    assert export.mimetype == "text/csv"
    # valid from 2026-04-01 is in the future relative to now? export shows rates valid now.
    assert export.get_data(as_text=True).startswith("prefix,rate")


def test_list_page_and_empty_state(admin_client, db_session):
    page = admin_client.get("/admin/rate-imports").get_data(as_text=True)
    assert "No rate deck imported yet" in page


def test_date_columns_are_checked_against_the_effective_date(db_session, pg, tmp_path):
    card = factories.ratecard("deck11")
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1, "valid_from": 2, "valid_to": 3, "destination_name": 4})
    text = ("prefix,rate,from,to,name\n"
            "33,0.02,2026-02-30,,a\n"              # 2 not a date
            "34,0.02,2026-03-01,,b\n"              # 3 before the effective date
            "35,0.02,2026-05-01,2026-04-15,c\n"    # 4 ends before it starts
            "36,0.02,,2026-06-01,\"tab\there \\\\ back\"\n")   # fine; name with a tab and backslashes
    with pytest.raises(RateImportError) as err:
        services.preview(pg, "ratecard", card.id, deck(tmp_path, text), opts, EFF)
    assert [(e["line"], e["column"]) for e in err.value.errors] == [(2, "valid_from"), (3, "valid_from"), (4, "valid_to")]
    fixed = "prefix,rate,from,to,name\n35,0.02,2026-05-01,2026-06-15,c\n36,0.02,,2026-06-01,\"tab\there \\\\ back\"\n"
    weight = factories.weight("dated")
    opts.weight_id = weight.id
    services.apply(pg, "ratecard", card.id, deck(tmp_path, fixed, "fixed.csv"), opts, EFF)
    with pg.cursor() as cur:
        cur.execute("SELECT prefix, valid_from, valid_to FROM billing.rates WHERE ratecard_id = %s ORDER BY prefix", (card.id,))
        assert cur.fetchall() == [("35", datetime(2026, 5, 1, tzinfo=timezone.utc), datetime(2026, 6, 15, tzinfo=timezone.utc)),
                                  ("36", EFF, datetime(2026, 6, 1, tzinfo=timezone.utc))]
        cur.execute("SELECT name FROM billing.destinations WHERE prefix = '36'")
        assert cur.fetchone() == ("tab\there \\\\ back",)


# ----------------------------------------------------------------------------- modes

PARTIAL = "prefix,rate\n336,0.0900\n"      # a carrier's daily notice: one prefix changes


def _card_with_three_rates(name):
    card = factories.ratecard(name)
    factories.sell_rate(card, "33", "0.0200")
    factories.sell_rate(card, "336", "0.0700")
    factories.sell_rate(card, "49", "0.0300")
    return card


def test_update_mode_changes_only_the_prefixes_in_the_file(db_session, pg, tmp_path):
    card = _card_with_three_rates("upd1")
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1})
    assert opts.mode == "update"                                    # the default
    result = services.apply(pg, "ratecard", card.id, deck(tmp_path, PARTIAL), opts, EFF)
    assert result.counts == {"changed": 1, "kept": 2}
    assert {p: r[0] for p, r in current_rates(pg, card.id, EFF).items()} == {
        "33": Decimal("0.020000"), "336": Decimal("0.090000"), "49": Decimal("0.030000")}


def test_replace_mode_closes_the_rest_only_when_the_number_is_confirmed(db_session, pg, tmp_path):
    card = _card_with_three_rates("rep1")
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1}, mode="replace")
    path = deck(tmp_path, PARTIAL)
    for wrong in (None, 1, 3):
        with pytest.raises(RateImportError, match="would close 2 prefix") as err:
            services.apply(pg, "ratecard", card.id, path, opts, EFF, confirm_removed=wrong)
        assert err.value.errors[0]["value"] == "2"
        assert len(current_rates(pg, card.id, EFF)) == 3                 # nothing imported
    result = services.apply(pg, "ratecard", card.id, path, opts, EFF, confirm_removed=2)
    assert result.counts == {"changed": 1, "removed": 2}
    assert current_rates(pg, card.id, EFF) == {"336": (Decimal("0.090000"), Decimal("0"), 60, 60)}


def test_update_mode_is_not_blocked_by_future_rates_of_other_prefixes(db_session, pg, tmp_path):
    card = _card_with_three_rates("upd2")
    factories.sell_rate(card, "49", "0.0100", valid_from=LATER)
    opts = ImportOptions(mapping={"prefix": 0, "rate": 1})
    services.apply(pg, "ratecard", card.id, deck(tmp_path, PARTIAL), opts, EFF)
    with pytest.raises(RateImportError, match="already scheduled"):
        services.apply(pg, "ratecard", card.id, deck(tmp_path, PARTIAL), ImportOptions(
            mapping={"prefix": 0, "rate": 1}, mode="replace"), EFF, confirm_removed=2)


def test_unknown_mode_is_refused(db_session, pg, tmp_path):
    card = factories.ratecard("mode0")
    with pytest.raises(RateImportError, match="unknown import mode 'merge'"):
        services.preview(pg, "ratecard", card.id, deck(tmp_path, PARTIAL),
                         ImportOptions(mapping={"prefix": 0, "rate": 1}, mode="merge"), EFF)


def test_import_file_is_the_api_entry_point_with_a_mode(db_session, pg, tmp_path):
    card = _card_with_three_rates("api1")
    path = deck(tmp_path, PARTIAL)
    dry = services.import_file(pg, "ratecard", "api1", path, EFF, mode="replace", dry_run=True)
    assert dry.counts == {"changed": 1, "removed": 2}
    assert len(current_rates(pg, card.id, EFF)) == 3
    with pytest.raises(RateImportError, match="would close 2"):
        services.import_file(pg, "ratecard", "api1", path, EFF, mode="replace")
    assert services.import_file(pg, "ratecard", "api1", path, EFF).counts == {"changed": 1, "kept": 2}
    assert len(current_rates(pg, card.id, EFF)) == 3
    services.import_file(pg, "ratecard", "api1", path, EFF, mode="replace", confirm_removed=2)
    assert list(current_rates(pg, card.id, EFF)) == ["336"]
    with pytest.raises(RateImportError, match="no ratecard named 'nope'"):
        services.import_file(pg, "ratecard", "nope", path, EFF)


def test_pages_replace_needs_the_typed_number(admin_client, db_session, pg, tmp_path):
    card = _card_with_three_rates("pagerep")
    response = _upload(admin_client, f"ratecard:{card.id}", PARTIAL)
    mapping = {f"map_{n}": "" for n in services.FIELD_NAMES}
    mapping.update({"map_prefix": "0", "map_rate": "1", "effective_from": "2026-04-01T00:00",
                    "default_increment": "60/60", "weight_id": "", "mode": "replace"})
    admin_client.post(response.headers["Location"], data=mapping)
    url = response.headers["Location"].replace("/mapping", "")
    page = admin_client.get(url).get_data(as_text=True)
    assert 'data-import-mode="replace"' in page
    assert 'text-danger fw-bold" data-count="removed">2<' in page
    assert "Type <strong>2</strong> to confirm" in page and "Import 1 rate and close 2" in page
    page = admin_client.post(url + "/run", data={"confirm_removed": "yes"}, follow_redirects=True).get_data(as_text=True)
    assert "Nothing was imported: type 2" in page
    assert len(current_rates(pg, card.id, EFF)) == 3
    admin_client.post(url + "/run", data={"confirm_removed": "2"})
    assert list(current_rates(pg, card.id, EFF)) == ["336"]

    # Update mode (the default) says what it keeps and needs no typing.
    response = _upload(admin_client, f"ratecard:{card.id}", "prefix,rate\n336,0.0950\n", "again.csv")
    admin_client.post(response.headers["Location"], data={**mapping, "mode": "update",
                                                          "effective_from": "2026-05-01T00:00"})
    url = response.headers["Location"].replace("/mapping", "")
    page = admin_client.get(url).get_data(as_text=True)
    assert 'data-import-mode="update"' in page and "Not in the file (kept)" in page and "to confirm" not in page
    admin_client.post(url + "/run")
    assert current_rates(pg, card.id, LATER)["336"][0] == Decimal("0.095000")
