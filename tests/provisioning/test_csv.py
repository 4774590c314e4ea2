"""Rates from CSV files beside the YAML file: same columns, errors name file and line."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import ProviderRate, SellRate
from portal.provisioning import ProvisioningError

YAML = """
    weights: [{name: w}]
    ratecards:
      - {name: retail, csv: decks/retail.csv}
    providers:
      - {name: carrier, csv: carrier.csv}
"""


def test_rates_from_csv(db_session, load, tmp_path):
    (tmp_path / "decks").mkdir()
    summary = load(YAML, **{
        "decks/retail.csv": """\
            prefix,rate,connect_fee,min_duration,increment,valid_from,valid_to,blocked
            33,0.0200,,,60/60,2026-01-01,,
            336,0.0800,0.05,30,30/6,,2027-01-01 00:00:00+01:00,false

            3389,1.5,,,,,,TRUE
        """.replace("            ", ""),
        "carrier.csv": "prefix,rate,increment\n33,0.005,1/1\n",
    })
    assert "sell rates: 3 created" in summary.lines() and "provider rates: 1 created" in summary.lines()
    rates = {r.prefix: r for r in db_session.scalars(select(SellRate))}
    assert rates["33"].rate == Decimal("0.02") and rates["33"].valid_from.date().isoformat() == "2026-01-01"
    assert (rates["336"].connect_fee, rates["336"].min_duration, rates["336"].increment) == (Decimal("0.05"), 30, "30/6")
    assert rates["336"].valid_to.isoformat() == "2026-12-31T23:00:00+00:00"
    assert rates["3389"].blocked and rates["3389"].increment == "60/60"
    assert db_session.scalar(select(ProviderRate.rate)) == Decimal("0.005")


@pytest.mark.parametrize("content, error", [
    ("prefix,rate\n33,0.01\n336,-0.5\n", "ratecards[0].csv: decks/retail.csv line 3: rate: must be >= 0"),
    ("prefix,rate\n33,0.01\n\n33x,0.5\n", "ratecards[0].csv: decks/retail.csv line 4: prefix: not a prefix (1 to 20 digits)"),
    ("prefix,rate,increment\n33,0.01,0/6\n",
     "ratecards[0].csv: decks/retail.csv line 2: increment: not an increment like 60/60 (first/next seconds, each 1 to 86400)"),
    ("prefix,rate\n33,0.01,9\n", "ratecards[0].csv: decks/retail.csv line 2: expected 2 fields, found 3"),
    ("prefix,rate\n33,0.01\n33,0.02\n",
     "ratecards[0].csv: decks/retail.csv line 3: duplicate of line 2 (same prefix and valid_from)"),
    ("prefix,rate,price\n33,0.01,1\n", "ratecards[0].csv: decks/retail.csv line 1: unknown column 'price'"),
    ("prefix,rate,blocked\n33,0.01,maybe\n", "ratecards[0].csv: decks/retail.csv line 2: blocked: must be true or false"),
    ("prefix,rate\n33,0.0000001\n", "ratecards[0].csv: decks/retail.csv line 2: rate: more than 6 decimal places"),
    ("", "ratecards[0].csv: decks/retail.csv line 1: empty file (expected a header: prefix,rate,...)"),
])
def test_bad_csv_line_is_named_and_nothing_changes(base, load, counts, tmp_path, content, error):
    (tmp_path / "decks").mkdir()
    before = counts()
    with pytest.raises(ProvisioningError) as excinfo:
        load(YAML, **{"decks/retail.csv": content, "carrier.csv": "prefix,rate\n33,0.005\n"})
    assert excinfo.value.errors == [error]
    assert counts() == before


def test_missing_csv_file(load):
    with pytest.raises(ProvisioningError) as excinfo:
        load("ratecards: [{name: retail, csv: nowhere.csv}]")
    assert excinfo.value.errors == ["ratecards[0].csv: cannot read nowhere.csv: No such file or directory"]
