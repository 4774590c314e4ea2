"""`flask --app wsgi seed-demo`: a small, realistic and deterministic demo data set.

The configuration is `demo.yaml` (customers, endpoints, carriers, logins) plus a
destination catalogue and rate lists generated here with a seeded random generator,
loaded through the provisioning loader like any operator's file. Then about 1,200
calls of the last 45 days are inserted into `billing.fs_cdr` exactly as FreeSWITCH
would write them after route.lua (billing_* variables taken from the same rates and
routing rules), with fixed uuids and ON CONFLICT (uuid) DO NOTHING.

Idempotent: every run upserts the same configuration (an edited demo entity is put
back), a customer's opening balance is only applied when it is created, and calls
already inserted are skipped. A database that holds other customers but none of the
demo's is left alone unless --force.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path

from sqlalchemy import select, text

from ..extensions import db
from ..models import Customer, Endpoint, Provider
from .loader import Summary, load_document
from .yamlio import parse

DEMO_YAML = Path(__file__).resolve().parent / "demo.yaml"
SEED = 20260101
CALLS_PER_CUSTOMER = {"acme": 260, "globex": 520, "initech": 110, "resellco": 330}
# Prepaid customers start with what their demo calls cost plus this much, so their
# balance ends here once the calls are billed.
PREPAID_LEFT = {"acme": Decimal("42.50"), "initech": Decimal("3.20")}
HISTORY_DAYS = 45
UUID_NAMESPACE = uuid.UUID("6f1d3c52-7a0e-4c1b-9a55-2f8f0f6a0d11")

# argon2 hashes of the demo passwords of demo.yaml, computed once: loading a hash is a
# string comparison, while `password:` costs an argon2 run per user and per start.
# tests/provisioning/test_seed_demo.py checks that each one matches its password.
DEMO_PASSWORD_HASHES = {
    "ops@acme.example": "$argon2id$v=19$m=65536,t=3,p=4$C1orTyX83KK7vP5rBztlwQ$2eNbzwz48Na3TgguWBrYp7uChYfIr3tN6bMBk/OF1A4",
    "billing@globex.example": "$argon2id$v=19$m=65536,t=3,p=4$p2IUW9h/zxbdOvrqcABb/g$EPD5ZgP9Ke8Ohwi8LuHy/IlpztGSeU0KP2KsspYrnj4",
    "noc@globex.example": "$argon2id$v=19$m=65536,t=3,p=4$A4JeXnURC+XDeiTPabOFAA$ccHp0Ct6yqyJBbaH//H1Xq/CHkUSgqA6c+jFOVULUEM",
    "peter@initech.example": "$argon2id$v=19$m=65536,t=3,p=4$FezF+qTYc7ScOyxMJwdlSA$M2TTF0Nm4s8/jp4LP6Myjl7/3w1yVxDi6sOKs72Jjx8",
    "admin@resellco.example": "$argon2id$v=19$m=65536,t=3,p=4$5JLStENeN1ASNu7WGVgcPg$0+KKY0kawjsiJAyLeHl96BCuT8YHVbnyIMiTXGy26BI",
}

# ------------------------------------------------------------------------- catalogue
# (prefix, name, weight, cost per minute at the cheapest carrier)
FRANCE = [
    ("33", "France", "local", "0.0060"),
    ("331", "France Paris / Ile-de-France", "local", "0.0040"),
    ("332", "France North-West", "local", "0.0042"),
    ("333", "France North-East", "local", "0.0042"),
    ("334", "France South-East", "local", "0.0042"),
    ("335", "France South-West", "local", "0.0042"),
    ("339", "France VoIP (09)", "local", "0.0045"),
    ("336", "France Mobile", "mobile", "0.0110"),
    ("337", "France Mobile", "mobile", "0.0115"),
    ("338", "France Special Services (08)", "national", "0.0300"),
    ("33800", "France Freephone", "national", "0.0150"),
    ("33805", "France Freephone", "national", "0.0150"),
    ("33806", "France Shared Cost", "national", "0.0200"),
    ("33809", "France Shared Cost", "national", "0.0200"),
    ("33810", "France Shared Cost", "national", "0.0250"),
    ("33820", "France Special Services", "national", "0.0600"),
    ("33821", "France Special Services", "national", "0.0600"),
    ("3389", "France Premium (089)", "premium", "0.2500"),
    ("33891", "France Premium 0891", "premium", "0.3000"),
    ("33892", "France Premium 0892", "premium", "0.3500"),
    ("33897", "France Premium 0897", "premium", "0.4000"),
    ("33899", "France Premium 0899", "premium", "0.6000"),
]

# country code, name, fixed cost, [(mobile prefix suffix, mobile cost)], [(city suffix, city name)], [premium suffixes]
COUNTRIES = [
    ("49", "Germany", "0.0070", [("15", "0.0160"), ("151", "0.0150"), ("152", "0.0155"), ("157", "0.0170"),
                                  ("159", "0.0165"), ("16", "0.0160"), ("160", "0.0150"), ("162", "0.0155"),
                                  ("163", "0.0170"), ("17", "0.0160"), ("170", "0.0150"), ("171", "0.0150"),
                                  ("172", "0.0155"), ("173", "0.0155"), ("174", "0.0160"), ("175", "0.0150"),
                                  ("176", "0.0165"), ("177", "0.0170"), ("178", "0.0170"), ("179", "0.0165")],
     [("30", "Berlin"), ("40", "Hamburg"), ("89", "Munich"), ("221", "Cologne"), ("69", "Frankfurt"),
      ("711", "Stuttgart"), ("211", "Dusseldorf")], ["900", "137"]),
    ("44", "United Kingdom", "0.0055", [("7", "0.0090"), ("71", "0.0085"), ("73", "0.0088"), ("74", "0.0085"),
                                        ("75", "0.0090"), ("77", "0.0085"), ("78", "0.0088"), ("79", "0.0085"),
                                        ("70", "0.1800"), ("76", "0.2500")],
     [("20", "London"), ("121", "Birmingham"), ("161", "Manchester"), ("131", "Edinburgh"), ("141", "Glasgow"),
      ("113", "Leeds"), ("117", "Bristol"), ("28", "Northern Ireland"), ("3", "Non-geographic")], ["90", "91", "98"]),
    ("34", "Spain", "0.0065", [("6", "0.0120"), ("7", "0.0125")], [("91", "Madrid"), ("93", "Barcelona")],
     ["803", "806", "807", "905"]),
    ("39", "Italy", "0.0068", [("3", "0.0140")], [("02", "Milan"), ("06", "Rome")], ["899"]),
    ("32", "Belgium", "0.0075", [("46", "0.0180"), ("47", "0.0175"), ("48", "0.0180"), ("49", "0.0175")],
     [("2", "Brussels")], ["900", "902"]),
    ("31", "Netherlands", "0.0070", [("6", "0.0190")], [("20", "Amsterdam"), ("10", "Rotterdam")],
     ["900", "906", "909"]),
    ("41", "Switzerland", "0.0110", [("75", "0.0450"), ("76", "0.0450"), ("77", "0.0460"), ("78", "0.0450"),
                                      ("79", "0.0460")], [("22", "Geneva"), ("44", "Zurich")], ["900", "901", "906"]),
    ("352", "Luxembourg", "0.0090", [("6", "0.0250")], [], []),
    ("351", "Portugal", "0.0080", [("9", "0.0180")], [("21", "Lisbon")], []),
    ("353", "Ireland", "0.0085", [("8", "0.0220")], [("1", "Dublin")], []),
    ("43", "Austria", "0.0095", [("6", "0.0320")], [("1", "Vienna")], []),
    ("48", "Poland", "0.0085", [("50", "0.0140"), ("51", "0.0140"), ("53", "0.0145"), ("57", "0.0150"),
                                 ("60", "0.0140"), ("66", "0.0145"), ("69", "0.0140"), ("72", "0.0145"),
                                 ("73", "0.0145"), ("78", "0.0150"), ("79", "0.0145"), ("88", "0.0150")],
     [("22", "Warsaw")], []),
    ("46", "Sweden", "0.0080", [("7", "0.0160")], [("8", "Stockholm")], []),
    ("47", "Norway", "0.0090", [("4", "0.0180"), ("9", "0.0180")], [("2", "Oslo")], []),
    ("45", "Denmark", "0.0085", [("2", "0.0170"), ("3", "0.0170")], [], []),
    ("212", "Morocco", "0.0950", [("6", "0.2600"), ("7", "0.2700")], [("522", "Casablanca")], []),
    ("213", "Algeria", "0.1100", [("5", "0.3400"), ("6", "0.3500"), ("7", "0.3300")], [("21", "Algiers")], []),
    ("216", "Tunisia", "0.1050", [("2", "0.3100"), ("5", "0.3000"), ("9", "0.3000")], [("71", "Tunis")], []),
    ("221", "Senegal", "0.1400", [("76", "0.2100"), ("77", "0.2200"), ("78", "0.2200")], [("33", "Dakar")], []),
    ("225", "Cote d'Ivoire", "0.1600", [("05", "0.2300"), ("07", "0.2400")], [("27", "Abidjan")], []),
    ("27", "South Africa", "0.0250", [("6", "0.0550"), ("7", "0.0550"), ("8", "0.0600")], [("11", "Johannesburg")], []),
    ("90", "Turkey", "0.0220", [("5", "0.0650")], [("212", "Istanbul")], []),
    ("7", "Russia", "0.0300", [("9", "0.0800")], [("495", "Moscow")], []),
    ("972", "Israel", "0.0120", [("5", "0.0300")], [("3", "Tel Aviv")], []),
    ("971", "United Arab Emirates", "0.1200", [("50", "0.1500"), ("52", "0.1500"), ("55", "0.1500"),
                                               ("56", "0.1500"), ("58", "0.1500")], [("4", "Dubai")], []),
    ("86", "China", "0.0090", [("13", "0.0090"), ("15", "0.0090"), ("18", "0.0090")], [("10", "Beijing")], []),
    ("91", "India", "0.0180", [("7", "0.0160"), ("8", "0.0160"), ("9", "0.0160")], [("11", "Delhi")], []),
    ("81", "Japan", "0.0280", [("70", "0.0900"), ("80", "0.0900"), ("90", "0.0900")], [("3", "Tokyo")], []),
    ("61", "Australia", "0.0150", [("4", "0.0380")], [("2", "Sydney")], ["190"]),
    ("55", "Brazil", "0.0250", [("119", "0.0700")], [("11", "Sao Paulo")], []),
    ("52", "Mexico", "0.0150", [("1", "0.0300")], [("55", "Mexico City")], []),
    ("262", "Reunion", "0.0350", [("262692", "0.1300"), ("262693", "0.1300")], [], []),
    ("590", "Guadeloupe", "0.0350", [("590690", "0.1300")], [], []),
    ("596", "Martinique", "0.0350", [("596696", "0.1300")], [], []),
    ("594", "French Guiana", "0.0400", [("594694", "0.1400")], [], []),
    ("687", "New Caledonia", "0.2200", [("7", "0.2900"), ("8", "0.2900"), ("9", "0.2900")], [], []),
    ("689", "French Polynesia", "0.2300", [("87", "0.3000"), ("89", "0.3000")], [], []),
]

SATELLITE = [("8816", "Iridium", "3.2000"), ("8817", "Iridium", "3.2000"), ("870", "Inmarsat", "4.9000")]

# North America: NANP area codes "code state/province[ city]".
US_AREAS = """
201 NJ;202 DC Washington;203 CT;205 AL;206 WA Seattle;207 ME;208 ID;209 CA;210 TX San Antonio;212 NY New York;
213 CA Los Angeles;214 TX Dallas;215 PA Philadelphia;216 OH Cleveland;217 IL;218 MN;219 IN;224 IL;225 LA;228 MS;
229 GA;231 MI;234 OH;239 FL;240 MD;248 MI;251 AL;252 NC;253 WA;254 TX;256 AL;260 IN;262 WI;267 PA;269 MI;270 KY;
276 VA;281 TX Houston;301 MD;302 DE;303 CO Denver;304 WV;305 FL Miami;307 WY;308 NE;309 IL;310 CA;312 IL Chicago;
313 MI Detroit;314 MO St. Louis;315 NY;316 KS;317 IN Indianapolis;318 LA;319 IA;320 MN;321 FL;323 CA;330 OH;334 AL;
336 NC;337 LA;339 MA;347 NY;351 MA;352 FL;360 WA;361 TX;385 UT;386 FL;401 RI;402 NE;404 GA Atlanta;405 OK;406 MT;
407 FL Orlando;408 CA San Jose;409 TX;410 MD Baltimore;412 PA Pittsburgh;413 MA;414 WI Milwaukee;
415 CA San Francisco;417 MO;419 OH;423 TN;425 WA;432 TX;434 VA;435 UT;440 OH;443 MD;469 TX;478 GA;479 AR;480 AZ;
484 PA;501 AR;502 KY Louisville;503 OR Portland;504 LA New Orleans;505 NM;507 MN;508 MA;509 WA;510 CA Oakland;
512 TX Austin;513 OH Cincinnati;515 IA;516 NY;517 MI;518 NY;520 AZ;530 CA;540 VA;541 OR;559 CA;561 FL;562 CA;
570 PA;571 VA;573 MO;580 OK;585 NY;586 MI;601 MS;602 AZ Phoenix;603 NH;605 SD;606 KY;607 NY;608 WI;609 NJ;610 PA;
612 MN Minneapolis;614 OH Columbus;615 TN Nashville;616 MI;617 MA Boston;618 IL;619 CA San Diego;620 KS;623 AZ;
626 CA;630 IL;631 NY;636 MO;646 NY New York;650 CA;651 MN;661 CA;662 MS;678 GA;702 NV Las Vegas;703 VA;
704 NC Charlotte;706 GA;707 CA;708 IL;712 IA;713 TX Houston;714 CA;715 WI;716 NY Buffalo;717 PA;718 NY New York;
719 CO;720 CO;724 PA;727 FL;732 NJ;734 MI;740 OH;754 FL;757 VA;760 CA;763 MN;765 IN;770 GA;772 FL;773 IL Chicago;
774 MA;775 NV;781 MA;785 KS;786 FL Miami;801 UT Salt Lake City;802 VT;803 SC;804 VA;805 CA;806 TX;808 HI;810 MI;
812 IN;813 FL Tampa;814 PA;815 IL;816 MO Kansas City;817 TX;818 CA;828 NC;830 TX;831 CA;832 TX;843 SC;845 NY;
847 IL;850 FL;856 NJ;857 MA;858 CA;859 KY;860 CT;862 NJ;863 FL;864 SC;865 TN;870 AR;901 TN Memphis;903 TX;
904 FL Jacksonville;907 AK;908 NJ;909 CA;910 NC;912 GA;913 KS;914 NY;915 TX;916 CA Sacramento;917 NY New York;
918 OK;919 NC;920 WI;925 CA;937 OH;941 FL;949 CA;951 CA;954 FL;956 TX;970 CO;971 OR;972 TX;973 NJ;978 MA;979 TX;
989 MI
"""
CANADA_AREAS = "416 ON Toronto;647 ON Toronto;514 QC Montreal;438 QC Montreal;604 BC Vancouver;778 BC;403 AB Calgary;" \
               "613 ON Ottawa;902 NS;905 ON"


def _areas(spec: str):
    for item in spec.replace("\n", "").split(";"):
        code, _, place = item.strip().partition(" ")
        yield code, place


def catalogue() -> list[tuple[str, str, str, Decimal]]:
    """(prefix, name, weight, base cost) of every demo destination, sorted by prefix."""
    out = [(p, n, w, Decimal(c)) for p, n, w, c in FRANCE]
    for cc, country, fixed, mobiles, cities, premiums in COUNTRIES:
        out.append((cc, country, "international", Decimal(fixed)))
        for suffix, cost in mobiles:
            prefix = suffix if suffix.startswith(cc) and len(suffix) > len(cc) + 2 else cc + suffix
            out.append((prefix, f"{country} Mobile", "mobile", Decimal(cost)))
        for suffix, city in cities:
            out.append((cc + suffix, f"{country} {city}", "international", Decimal(fixed) * Decimal("0.9")))
        for suffix in premiums:
            out.append((cc + suffix, f"{country} Premium", "premium", Decimal("0.9000")))
    out.append(("1", "USA / Canada", "international", Decimal("0.0060")))
    for code, place in _areas(US_AREAS):
        out.append(("1" + code, f"USA {place}", "international", Decimal("0.0042")))
    for code, place in _areas(CANADA_AREAS):
        out.append(("1" + code, f"Canada {place}", "international", Decimal("0.0048")))
    out += [("1800", "USA Toll-free", "international", Decimal("0.0250")),
            ("1888", "USA Toll-free", "international", Decimal("0.0250")),
            ("1900", "USA Premium", "premium", Decimal("1.1000"))]
    out += [(p, n, "premium", Decimal(c)) for p, n, c in SATELLITE]
    return sorted({prefix: (prefix, *rest) for prefix, *rest in reversed(out)}.values())


# ------------------------------------------------------------------------- rates
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


def build_document(today: date) -> dict:
    """demo.yaml plus the generated catalogue and rates (no balances yet)."""
    document = parse(DEMO_YAML.read_text(encoding="utf-8"), source=str(DEMO_YAML))
    rng = random.Random(SEED)
    document["destinations"] = [{"prefix": p, "name": n, "weight": w} for p, n, w, _ in catalogue()]
    sell, cost = rate_lists(rng, today)
    for card in document["ratecards"]:
        card["rates"] = sell[card["name"]]
    for provider in document["providers"]:
        provider["rates"] = cost[provider["name"]]
    return document


# ------------------------------------------------------------------------- calls
@dataclass(frozen=True)
class Rate:
    prefix: str
    rate: Decimal
    connect_fee: Decimal
    min_duration: int
    first: int
    next: int
    valid_from: date | None
    valid_to: date | None
    blocked: bool

    @classmethod
    def from_row(cls, row: dict) -> "Rate":
        first, nxt = (int(x) for x in str(row.get("increment", "60/60")).split("/"))
        return cls(str(row["prefix"]), Decimal(str(row["rate"])), Decimal(str(row.get("connect_fee", "0"))),
                   int(row.get("min_duration", 0)), first, nxt, row.get("valid_from"), row.get("valid_to"),
                   bool(row.get("blocked", False)))

    def valid_at(self, at: datetime) -> bool:
        day = at.date()
        return (not self.blocked and (self.valid_from is None or self.valid_from <= day)
                and (self.valid_to is None or day < self.valid_to))


def billed_seconds(billsec: int, min_duration: int, first: int, nxt: int) -> int:
    """The rating rule of sql/procedures/10_rating.sql (billing_private.billed_seconds)."""
    if billsec <= 0:
        return 0
    seconds = max(billsec, min_duration)
    if seconds <= first:
        return first
    return first + -(-(seconds - first) // nxt) * nxt


def charge(billsec: int, rate: Rate) -> Decimal:
    if billsec <= 0:
        return Decimal(0)
    amount = rate.connect_fee + billed_seconds(billsec, rate.min_duration, rate.first, rate.next) * rate.rate / 60
    return amount.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _index(rates: list[Rate]) -> dict[str, list[Rate]]:
    out: dict[str, list[Rate]] = {}
    for rate in rates:
        out.setdefault(rate.prefix, []).append(rate)
    return out


def _longest(rates: dict[str, list[Rate]], number: str, at: datetime) -> Rate | None:
    """The valid rate with the longest prefix of `number` (as find_sell_rate does)."""
    for length in range(len(number), 0, -1):
        for rate in rates.get(number[:length], ()):
            if rate.valid_at(at):
                return rate
    return None


@dataclass
class Plan:
    """The demo's routing data in Python, to give each call the variables route.lua would set."""

    destinations: dict[str, tuple[str, str, str, Decimal]]
    permissions: dict[str, set[str]]
    sell: dict[str, dict[str, list[Rate]]]
    cost: dict[str, dict[str, list[Rate]]]
    providers: dict[str, dict]
    customers: dict[str, dict]

    @classmethod
    def from_document(cls, document: dict) -> "Plan":
        return cls(
            destinations={d[0]: d for d in catalogue()},
            permissions={p["name"]: {str(w) for w in p["weights"]} for p in document["permissions"]},
            sell={c["name"]: _index([Rate.from_row(r) for r in c["rates"]]) for c in document["ratecards"]},
            cost={p["name"]: _index([Rate.from_row(r) for r in p["rates"]]) for p in document["providers"]},
            providers={p["name"]: p for p in document["providers"]},
            customers={c["name"]: c for c in document["customers"]},
        )

    def destination(self, number: str):
        for length in range(len(number), 0, -1):
            if number[:length] in self.destinations:
                return self.destinations[number[:length]]
        return None

    def sell_rate(self, customer: dict, number: str, at: datetime) -> Rate | None:
        for link in sorted(customer.get("ratecards", []), key=lambda link: int(link["priority"])):
            rate = _longest(self.sell[link["name"]], number, at)
            if rate is not None:
                return rate
        return None

    def routes(self, customer: dict, number: str, sell: Rate, at: datetime) -> list[tuple[str, dict, Rate]]:
        allowed = None
        rules = [r for r in customer.get("routing_rules", []) if number.startswith(str(r["prefix"]))]
        if rules:
            allowed = set(max(rules, key=lambda r: len(str(r["prefix"])))["providers"])
        candidates = []
        for name, provider in self.providers.items():
            if allowed is not None and name not in allowed:
                continue
            rate = _longest(self.cost[name], number, at)
            if rate is None:
                continue
            if rate.rate > sell.rate and not customer.get("allow_negative_margin", False):
                continue
            gateways = sorted((g for g in provider["gateways"] if g.get("enabled", True)),
                              key=lambda g: (int(g.get("priority", 1)), g["name"]))
            for gateway in gateways:
                candidates.append((name, gateway, rate))
        if customer.get("lcr_strategy") == "priority":
            candidates.sort(key=lambda c: (int(self.providers[c[0]].get("priority", 1)), int(c[1].get("priority", 1))))
        else:
            candidates.sort(key=lambda c: (c[2].rate, int(c[1].get("priority", 1))))
        return candidates


# Traffic mix: (weight of the draw, destination prefix to dial, digits after it)
TRAFFIC = [
    (30, "331", 8), (10, "332", 8), (8, "334", 8), (6, "339", 8), (22, "336", 8), (12, "337", 8),
    (3, "33800", 5), (1, "33899", 5), (5, "4420", 8), (4, "447", 9), (4, "4930", 8), (3, "4917", 9),
    (3, "3491", 7), (2, "3906", 8), (2, "322", 7), (3, "1212", 7), (2, "1415", 7), (2, "1514", 7),
    (2, "2126", 8), (1, "2135", 8), (1, "22177", 7), (1, "9477", 7), (1, "8613", 9), (1, "8816", 8),
]

OUTCOMES = [  # (weight, hangup_cause, q850, answered, disposition)
    (62, "NORMAL_CLEARING", 16, True, "recv_bye"),
    (10, "NORMAL_CLEARING", 16, True, "send_bye"),
    (11, "NO_ANSWER", 19, False, "send_cancel"),
    (9, "USER_BUSY", 17, False, "recv_refuse"),
    (5, "ORIGINATOR_CANCEL", 487, False, "send_cancel"),
    (3, "NO_ROUTE_DESTINATION", 3, False, "recv_refuse"),
]


@dataclass
class Call:
    row: dict
    customer: str
    charge: Decimal = Decimal(0)


@dataclass
class DemoResult:
    summary: Summary
    calls_inserted: int
    calls_total: int
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = list(self.summary.lines())
        out.append(f"demo calls: {self.calls_inserted} inserted into billing.fs_cdr, "
                   f"{self.calls_total - self.calls_inserted} already there")
        out.append("Demo logins:")
        out += [f"  {email} / {password}  (customer {customer})" for email, password, customer in self.logins]
        return out


class DemoRefused(RuntimeError):
    """The database holds someone's real data: the demo is not added to it."""


def _number(rng: random.Random) -> str:
    _, dial_prefix, extra = _pick(rng, TRAFFIC)
    return dial_prefix + "".join(rng.choice("0123456789") for _ in range(extra))


def _pick(rng: random.Random, weighted):
    total = sum(item[0] for item in weighted)
    point = rng.uniform(0, total)
    for item in weighted:
        point -= item[0]
        if point <= 0:
            return item
    return weighted[-1]


def generate_calls(plan: Plan, now: datetime) -> list[Call]:
    """The demo calls, with ids as names (`customer`, `endpoint`, `provider`) resolved later."""
    rng = random.Random(SEED + 1)
    calls: list[Call] = []
    index = 0
    for customer_name, count in CALLS_PER_CUSTOMER.items():
        customer = plan.customers[customer_name]
        endpoints = [e for e in customer["endpoints"] if e.get("enabled", True)]
        for _ in range(count):
            index += 1
            endpoint = rng.choice(endpoints)
            number = _number(rng)
            allowed = plan.permissions[str(endpoint["permission"])]
            if (plan.destination(number) or (0, 0, None))[2] not in allowed and rng.random() < 0.85:
                number = _number(rng)  # users mostly dial what they may dial
            days_back = min(int(rng.expovariate(1 / 14)), HISTORY_DAYS - 1)
            start = (now - timedelta(days=days_back)).replace(hour=rng.choice([8, 9, 9, 10, 10, 11, 11, 12, 14, 14, 15, 15,
                                                                               16, 16, 17, 18, 19, 21]),
                                                              minute=rng.randrange(60), second=rng.randrange(60),
                                                              microsecond=0)
            if start + timedelta(hours=1, minutes=1) >= now:
                start -= timedelta(days=1)  # the call must have ended before now
            calls.append(_call(plan, rng, index, customer, endpoint, number, start))
    return calls


def _call(plan: Plan, rng: random.Random, index: int, customer: dict, endpoint: dict, number: str, start: datetime) -> Call:
    strip = int(endpoint.get("strip_digits", 0))
    dialed = ("00" + number) if strip == 2 else number
    auth_ip = endpoint["auth"] == "ip"
    row = {
        "uuid": str(uuid.uuid5(UUID_NAMESPACE, f"demo-cdr-{index}")),
        "caller_id_number": _caller_id(rng, customer["name"]),
        "destination_number": dialed,
        "start_stamp": start,
        "network_addr": _host_of(endpoint["ip"]) if auth_ip else f"192.0.2.{100 + index % 50}",
        "sip_user": None if auth_ip else str(endpoint["username"]),
        "billing_customer": customer["name"],
        "billing_endpoint": endpoint["name"],
        "billing_destination": number,
    }
    destination = plan.destination(number)
    weight = destination[2] if destination else None
    sell = plan.sell_rate(customer, number, start)
    routes = plan.routes(customer, number, sell, start) if sell else []
    reason = None
    if destination is None:
        reason, cause, q850 = "unknown_destination", "NO_ROUTE_DESTINATION", 3
    elif weight not in plan.permissions[str(endpoint["permission"])]:
        reason, cause, q850 = "destination_not_allowed", "OUTGOING_CALL_BARRED", 54
    elif sell is None:
        reason, cause, q850 = "no_rate", "NO_ROUTE_DESTINATION", 3
    elif not routes:
        reason, cause, q850 = "negative_margin", "NO_ROUTE_DESTINATION", 3
    if reason:
        # route.lua hung up before any bridge: no route variables, nothing to bill.
        end = start + timedelta(milliseconds=rng.randint(40, 400))
        row.update(end_stamp=end, duration=0, billsec=0, hangup_cause=cause, hangup_cause_q850=q850,
                   sip_hangup_disposition="send_refuse", billing_reject_reason=reason, answer_stamp=None)
        if reason in ("negative_margin",):
            row.update(billing_sell_prefix=sell.prefix if sell else None, billing_sell_rate=sell.rate if sell else None)
        return Call(row, customer["name"])
    _, cause, q850, answered, disposition = _pick(rng, OUTCOMES)
    route_index = 0
    if len(routes) > 1 and rng.random() < 0.06:
        route_index = 1  # the first carrier failed over to the second
    provider_name, gateway, cost = routes[route_index]
    ring = rng.randint(3, 22)
    billsec = min(int(rng.lognormvariate(4.3, 0.9)) + 1, 3600) if answered else 0
    answer = start + timedelta(seconds=ring) if answered else None
    end = start + timedelta(seconds=ring + billsec)
    row.update(
        answer_stamp=answer, end_stamp=end, duration=ring + billsec, billsec=billsec,
        billmsec=billsec * 1000 + (rng.randrange(1000) if answered else 0),
        hangup_cause=cause, hangup_cause_q850=q850, sip_hangup_disposition=disposition,
        billing_sell_prefix=sell.prefix, billing_sell_rate=sell.rate, billing_route_seq=route_index + 1,
        billing_gateway=gateway["name"], billing_provider=provider_name, billing_cost_rate=cost.rate,
    )
    return Call(row, customer["name"], charge(billsec, sell))


CALLER_PREFIX = {"acme": "33142", "globex": "33478", "initech": "33299", "resellco": "33970"}


def _caller_id(rng: random.Random, customer: str) -> str:
    return CALLER_PREFIX.get(customer, "33100") + "".join(rng.choice("0123456789") for _ in range(6))


def _host_of(cidr: str) -> str:
    import ipaddress

    network = ipaddress.ip_network(str(cidr))
    return str(network.network_address + (1 if network.num_addresses > 1 else 0))


# ------------------------------------------------------------------------- seeding
FS_CDR_COLUMNS = ("uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
                  "duration", "billsec", "billmsec", "hangup_cause", "hangup_cause_q850", "sip_hangup_disposition",
                  "network_addr", "sip_user", "billing_customer_id", "billing_endpoint_id", "billing_destination",
                  "billing_sell_prefix", "billing_sell_rate", "billing_route_seq", "billing_gateway",
                  "billing_provider_id", "billing_cost_rate", "billing_reject_reason", "start_epoch", "answer_epoch",
                  "end_epoch")


ANALYZED_TABLES = ("billing.destinations", "billing.rates", "billing.provider_rates", "billing.customer_ratecards",
                   "billing.endpoints", "billing.gateways", "billing.routing_rules")


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def insert_calls(calls: list[Call]) -> int:
    """Insert the calls not yet in billing.fs_cdr; returns how many were inserted."""
    session = db.session
    uuids = [c.row["uuid"] for c in calls]
    present = set(session.scalars(text("SELECT uuid FROM billing.fs_cdr WHERE uuid = ANY(:u)"), {"u": uuids}))
    missing = [c for c in calls if c.row["uuid"] not in present]
    if not missing:
        return 0
    ids = {
        "customer": dict(session.execute(select(Customer.name, Customer.id)).all()),
        "endpoint": dict(session.execute(select(Endpoint.name, Endpoint.id)).all()),
        "provider": dict(session.execute(select(Provider.name, Provider.id)).all()),
    }
    rows = []
    for call in sorted(missing, key=lambda c: c.row["start_stamp"]):
        r = dict(call.row)
        r["billing_customer_id"] = ids["customer"][r.pop("billing_customer")]
        r["billing_endpoint_id"] = ids["endpoint"][r.pop("billing_endpoint")]
        provider = r.pop("billing_provider", None)
        r["billing_provider_id"] = ids["provider"][provider] if provider else None
        r["start_epoch"], r["answer_epoch"], r["end_epoch"] = (_epoch(r.get("start_stamp")), _epoch(r.get("answer_stamp")),
                                                               _epoch(r.get("end_stamp")))
        rows.append({column: r.get(column) for column in FS_CDR_COLUMNS})
    columns = ", ".join(FS_CDR_COLUMNS)
    values = ", ".join(f":{column}" for column in FS_CDR_COLUMNS)
    # In start order, one row per INSERT, as FreeSWITCH writes them: the billing
    # trigger rates each one like a real call.
    session.execute(text(f"INSERT INTO billing.fs_cdr ({columns}) VALUES ({values}) ON CONFLICT (uuid) DO NOTHING"), rows)
    return len(rows)


def seed(force: bool = False, now: datetime | None = None) -> DemoResult:
    """Load the demo configuration and calls in one transaction and commit."""
    now = now or datetime.now(timezone.utc)
    session = db.session
    document = build_document(now.date())
    demo_names = [c["name"] for c in document["customers"]]
    others = session.scalar(select(Customer.id).where(Customer.name.not_in(demo_names)).limit(1))
    ours = session.scalar(select(Customer.id).where(Customer.name.in_(demo_names)).limit(1))
    if others is not None and ours is None and not force:
        raise DemoRefused("seed-demo: this database already holds customers that are not demo data; "
                          "nothing was added (use --force to add the demo anyway)")
    plan = Plan.from_document(document)
    calls = generate_calls(plan, now)
    spent: dict[str, Decimal] = {}
    for call in calls:
        spent[call.customer] = spent.get(call.customer, Decimal(0)) + call.charge
    for customer in document["customers"]:
        if customer["name"] in PREPAID_LEFT:
            customer["balance"] = str(PREPAID_LEFT[customer["name"]] + spent.get(customer["name"], Decimal(0)))
    logins = []
    for customer in document["customers"]:
        for user in customer.get("users", []):
            logins.append((str(user["email"]), str(user["password"]), customer["name"]))
            if user["email"] in DEMO_PASSWORD_HASHES:
                user["password_hash"] = DEMO_PASSWORD_HASHES[user["email"]]
                del user["password"]
    try:
        summary = load_document(document, base_dir=DEMO_YAML.parent, actor="seed-demo", commit=False)
        # Fresh tables have no statistics: without them the planner scans a whole
        # ratecard per rate lookup (find_sell_rate) when the billing trigger rates the
        # calls below. ANALYZE sees this transaction's own rows.
        session.execute(text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))
        inserted = insert_calls(calls)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return DemoResult(summary, inserted, len(calls), logins)
