"""IP ranges of endpoints: one range belongs to one customer (migration 0090).

Two customers may not have overlapping IP endpoints; within one customer ranges may
nest and the longest match takes the call (route_call, docs/routing.md); the very same
range twice is refused. The database enforces this (ex_endpoints_ip_one_customer,
uq_endpoints_ip); the functions here find the conflict first so that the back office
and the provisioning file can say which endpoint is in the way.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import text

from .extensions import db


@dataclass(frozen=True)
class Conflict:
    endpoint: str          # the endpoint in the way
    ip: str                # its range
    customer: str          # its customer
    same_customer: bool    # then it is the very same range

    def message(self) -> str:
        """`overlaps 198.51.100.7/32 of customer acme` (the provisioning error's words)."""
        if self.same_customer:
            return f"the same range as endpoint {self.endpoint} ({self.ip}) of this customer"
        return f"overlaps {self.ip} of customer {self.customer}"


_CONFLICTS = text("""
    SELECT e.name, e.ip::text, c.name, e.customer_id = :customer_id
      FROM billing.endpoints e
      JOIN billing.customers c ON c.id = e.customer_id
     WHERE e.auth = 'ip' AND e.ip && CAST(:ip AS cidr)
       AND (e.customer_id <> :customer_id OR e.ip = CAST(:ip AS cidr))
       AND e.id IS DISTINCT FROM CAST(:endpoint_id AS bigint)
       AND NOT (e.name = ANY(CAST(:ignore AS text[])))
     ORDER BY e.customer_id = :customer_id, masklen(e.ip), e.name""")


def conflicts(ip: str, customer_id: int | None, endpoint_id: int | None = None,
              ignore: Iterable[str] = ()) -> list[Conflict]:
    """Endpoints that `ip` of customer `customer_id` may not coexist with: other
    customers' overlapping ranges, and this customer's endpoints with the same range.
    `endpoint_id` (the endpoint being edited) and the endpoints named in `ignore` are
    left out. Uses the GiST index of ex_endpoints_ip_one_customer."""
    rows = db.session.execute(_CONFLICTS, {"ip": ip, "customer_id": customer_id if customer_id is not None else -1,
                                           "endpoint_id": endpoint_id, "ignore": sorted(ignore)}).all()
    return [Conflict(name, cidr, customer, bool(same)) for name, cidr, customer, same in rows]


@dataclass(frozen=True)
class Range:
    """One IP endpoint of a provisioning file, in file order."""
    key: str               # where it is (an entry path), for the caller
    name: str
    customer: str
    ip: str


def conflicts_among(ranges: list[Range]) -> list[tuple[Range, Range]]:
    """(later, earlier) pairs of `ranges` that may not coexist, without any database:
    CIDRs either nest or are disjoint, so after sorting by address (widest first) a
    range overlaps exactly the ranges still open on a stack. O(n log n)."""
    order = {id(r): i for i, r in enumerate(ranges)}
    keyed = sorted(((ipaddress.ip_network(r.ip), r) for r in ranges),
                   key=lambda nr: (nr[0].version, int(nr[0].network_address), nr[0].prefixlen, order[id(nr[1])]))
    pairs: list[tuple[Range, Range]] = []
    stack: list[tuple[ipaddress._BaseNetwork, Range]] = []
    for network, item in keyed:
        while stack and not (stack[-1][0].version == network.version and network.subnet_of(stack[-1][0])):
            stack.pop()
        for outer_net, outer in stack:
            if outer.customer != item.customer or outer_net == network:
                later, earlier = (item, outer) if order[id(item)] > order[id(outer)] else (outer, item)
                pairs.append((later, earlier))
        stack.append((network, item))
    pairs.sort(key=lambda p: order[id(p[0])])
    return pairs


_NESTING = text("""
    SELECT inner_e.id, outer_e.name, outer_e.ip::text
      FROM billing.endpoints inner_e
      JOIN billing.endpoints outer_e ON outer_e.customer_id = inner_e.customer_id AND outer_e.auth = 'ip'
                                    AND outer_e.ip >> inner_e.ip
     WHERE inner_e.auth = 'ip' AND inner_e.id = ANY(CAST(:ids AS bigint[]))
     ORDER BY inner_e.id, masklen(outer_e.ip) DESC""")


def enclosing(endpoint_ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
    """For each IP endpoint, the wider ranges of the same customer that contain it
    (narrowest first): the pages show that the longest match takes its calls."""
    out: dict[int, list[tuple[str, str]]] = {}
    ids = sorted(set(endpoint_ids))
    if not ids:
        return out
    for inner_id, name, cidr in db.session.execute(_NESTING, {"ids": ids}):
        out.setdefault(inner_id, []).append((name, cidr))
    return out


_STORED_CONFLICTS = text("""
    SELECT f.ord, e.name, e.ip::text, c.name, c.name = f.customer
      FROM unnest(CAST(:ips AS cidr[]), CAST(:customers AS text[])) WITH ORDINALITY AS f(ip, customer, ord)
      JOIN billing.endpoints e ON e.auth = 'ip' AND e.ip && f.ip
      JOIN billing.customers c ON c.id = e.customer_id
     WHERE (c.name <> f.customer OR e.ip = f.ip)
       AND NOT (e.name = ANY(CAST(:ignore AS text[])))
     ORDER BY f.ord, masklen(e.ip), e.name""")


def conflicts_with_stored(ranges: list[Range], ignore: Iterable[str]) -> list[tuple[Range, Conflict]]:
    """Each range of `ranges` against the stored endpoints other than those named in
    `ignore` (the file's own, checked by conflicts_among): one set-based query."""
    if not ranges:
        return []
    rows = db.session.execute(_STORED_CONFLICTS, {"ips": [r.ip for r in ranges], "customers": [r.customer for r in ranges],
                                                  "ignore": sorted(ignore)}).all()
    return [(ranges[ord_ - 1], Conflict(name, cidr, customer, bool(same))) for ord_, name, cidr, customer, same in rows]
