"""The demo's calls: about 1,200 calls of the last 45 days, generated deterministically
and inserted into billing.fs_cdr exactly as FreeSWITCH would write them after route.lua
(fixed uuids, ON CONFLICT (uuid) DO NOTHING), so the billing trigger rates each one."""
from __future__ import annotations

import ipaddress
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text

from ...extensions import db
from ...models import Customer, Endpoint, Provider
from .document import SEED
from .plan import Plan, charge

CALLS_PER_CUSTOMER = {"acme": 260, "globex": 520, "initech": 110, "resellco": 330}
HISTORY_DAYS = 45
HOLD_SECONDS = 3600        # what each answered call's hold granted (calls last at most 3,600 s)
UUID_NAMESPACE = uuid.UUID("6f1d3c52-7a0e-4c1b-9a55-2f8f0f6a0d11")

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
    billsec = min(int(rng.lognormvariate(4.3, 0.9)) + 1, HOLD_SECONDS) if answered else 0
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
    network = ipaddress.ip_network(str(cidr))
    return str(network.network_address + (1 if network.num_addresses > 1 else 0))


FS_CDR_COLUMNS = ("uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
                  "duration", "billsec", "billmsec", "hangup_cause", "hangup_cause_q850", "sip_hangup_disposition",
                  "network_addr", "sip_user", "billing_customer_id", "billing_endpoint_id", "billing_destination",
                  "billing_sell_prefix", "billing_sell_rate", "billing_route_seq", "billing_gateway",
                  "billing_provider_id", "billing_cost_rate", "billing_reject_reason", "start_epoch", "answer_epoch",
                  "end_epoch")


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
    # route.lua placed a hold before each answered call (granting the call's whole
    # length: quotas are off in the demo), so the trigger bills it against that hold
    # like a real call; without one every answered call would be flagged no_hold.
    holds = [{"uuid": r["uuid"], "customer_id": r["billing_customer_id"], "endpoint_id": r["billing_endpoint_id"],
              "amount": c.charge, "sell_rate": r["billing_sell_rate"], "destination": r["billing_destination"],
              "start": r["start_stamp"]}
             for c, r in zip(sorted(missing, key=lambda c: c.row["start_stamp"]), rows) if r["billsec"]]
    if holds:
        session.execute(text(f"""
            INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate, max_duration,
                                            granted_seconds, destination, created_at, granted_at, expires_at)
            VALUES (:uuid, :customer_id, :endpoint_id, :amount, :sell_rate, {HOLD_SECONDS}, {HOLD_SECONDS},
                    :destination, :start, :start, now() + interval '1 hour')"""), holds)
    # The months the demo reaches back into get their own CDR partitions (the migrations
    # create them from last month on): the calls would otherwise sit in the default
    # partition, which the CDR partitions page shows and retention never archives.
    session.execute(text("""
        SELECT billing_private.create_cdr_partition(month::date)
          FROM generate_series(date_trunc('month', CAST(:first AS timestamptz)), now(), interval '1 month') AS month"""),
                    {"first": rows[0]["start_stamp"]})
    columns = ", ".join(FS_CDR_COLUMNS)
    values = ", ".join(f":{column}" for column in FS_CDR_COLUMNS)
    # In start order, one row per INSERT, as FreeSWITCH writes them: the billing
    # trigger rates each one like a real call.
    session.execute(text(f"INSERT INTO billing.fs_cdr ({columns}) VALUES ({values}) ON CONFLICT (uuid) DO NOTHING"), rows)
    return len(rows)
