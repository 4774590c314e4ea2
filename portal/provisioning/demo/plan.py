"""The demo's routing and rating in Python: which rate, which carriers and what charge
route.lua and the billing trigger would give a call, so that each generated CDR
carries the variables FreeSWITCH would have set."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from .catalogue import catalogue


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
