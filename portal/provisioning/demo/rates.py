"""The demo's rate lists, generated from the catalogue's base costs with a seeded random
generator: three ratecards (retail, wholesale, reseller) and two carriers' cost rates."""
from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from .catalogue import catalogue


def _round4(value: Decimal, rounding=ROUND_HALF_UP) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=rounding)


def _first_of_next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def rate_lists(rng: random.Random, today: date) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(sell rates per ratecard, cost rates per provider), deterministic for a seed."""
    change = _first_of_next_month(today)
    sell: dict[str, list[dict]] = {"retail": [], "wholesale": [], "reseller": []}
    cost: dict[str, list[dict]] = {"eurovoice": [], "atlantic": []}
    for prefix, _name, weight, base in catalogue():
        jitter = Decimal(rng.randint(90, 115)) / 100
        carrier_cost = _round4(base * jitter)
        # eurovoice carries everything but satellite; atlantic is cheaper to North
        # America and French mobiles, carries satellite, and skips some of Africa.
        if not prefix.startswith(("881", "870")):
            cost["eurovoice"].append({"prefix": prefix, "rate": str(carrier_cost), "increment": "1/1"})
        if not prefix.startswith(("221", "225", "687", "689")):
            factor = Decimal("0.82") if prefix.startswith(("1", "336", "337")) else Decimal(rng.randint(95, 112)) / 100
            atlantic = {"prefix": prefix, "rate": str(_round4(carrier_cost * factor)), "increment": "6/6"}
            if weight == "premium":
                atlantic["connect_fee"] = "0.0500"
            cost["atlantic"].append(atlantic)
        premium = weight == "premium"
        retail = max(carrier_cost * Decimal("1.8"), carrier_cost + Decimal("0.0100"))
        retail_row = {"prefix": prefix, "rate": str(_round4(retail, ROUND_CEILING)),
                      "increment": "30/30" if weight == "mobile" else "60/60"}
        if premium:
            retail_row.update(connect_fee="0.1500", min_duration=60)
        if prefix.startswith("447") and weight == "mobile":
            # A price change announced for next month, to show effective dates.
            sell["retail"].append({**retail_row, "valid_to": change})
            retail_row = {**retail_row, "rate": str(_round4(retail * Decimal("1.12"), ROUND_CEILING)), "valid_from": change}
        sell["retail"].append(retail_row)
        wholesale = {"prefix": prefix, "rate": str(_round4(carrier_cost * Decimal("1.12") + Decimal("0.0005"), ROUND_CEILING)),
                     "increment": "1/1"}
        if prefix.startswith(("881", "870")):
            wholesale["blocked"] = True
        elif premium:
            # Premium sold at a loss to wholesale: routes are refused for negative margin.
            wholesale["rate"] = str(_round4(carrier_cost * Decimal("0.9")))
        sell["wholesale"].append(wholesale)
        if weight != "local" or prefix == "33":
            sell["reseller"].append({"prefix": prefix, "rate": str(_round4(carrier_cost * Decimal("1.35"), ROUND_CEILING)),
                                     "increment": "30/6"})
    return sell, cost
