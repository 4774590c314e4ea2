"""The routing simulator: the rows of billing.route_preview (the routing helper's
read-only twin of billing.route_call, CONTRACT 1: same columns and rows, no hold).
"""
from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

COLUMNS = ["ok", "reason", "hangup_cause", "customer_id", "endpoint_id", "destination", "sell_prefix", "sell_rate",
           "max_duration", "route_seq", "gateway", "dial_string", "provider_id", "cost_rate"]
# route_preview's own columns after CONTRACT 1's (0110): the route's currency, the
# exchange rate to the customer's (NULL: the same) and the cost converted with it
PREVIEW_COLUMNS = ["cost_currency", "exchange_rate", "converted_cost_rate"]
SIP_USER_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
SIGNATURE = "billing.route_preview(text,inet,text,text,text)"

REASONS = {
    "invalid_number": "The number is not 1 to 20 digits (with an optional leading +).",
    "unknown_source": "No enabled endpoint matches this source IP or SIP user.",
    "account_disabled": "The customer or the endpoint is disabled.",
    "unknown_destination": "No destination of the catalogue matches the number.",
    "destination_not_allowed": "The endpoint's permission does not include this destination's class.",
    "no_rate": "None of the customer's ratecards has a valid rate for this number.",
    "too_many_calls": "The customer or endpoint has reached its concurrent-call limit.",
    "spend_limit": "The endpoint has reached its spend limit for this month.",
    "insufficient_funds": "Available funds do not cover the first billing increment.",
    "negative_margin": "Every route costs more than the sell rate and the customer does not allow that.",
    "no_route": "No enabled provider route with capacity serves this number.",
}
FX_REFUSED = ("not offered: no {currency}→{customer_currency} exchange rate is valid now "
              "(add one under Exchange rates)")


class SimulatorError(ValueError):
    """Input the simulator cannot use; the message says why."""


class SimulatorUnavailable(SimulatorError):
    """billing.route_preview is not installed in this database."""


@dataclass
class Route:
    seq: int
    gateway: str
    dial_string: str
    provider_id: int
    provider: str | None
    sell_rate: Decimal
    cost_rate: Decimal                       # in the customer's currency (converted when needed)
    cost_currency: str | None = None         # the provider's currency
    original_cost_rate: Decimal | None = None   # the provider's own rate, when converted
    exchange_rate: Decimal | None = None

    @property
    def converted(self) -> bool:
        return self.exchange_rate is not None

    @property
    def exchange_rate_text(self) -> str:
        return format(Decimal(self.exchange_rate).normalize(), "f") if self.converted else ""

    @property
    def margin(self) -> Decimal:
        return self.sell_rate - self.cost_rate

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.sell_rate:
            return None
        return (100 * self.margin / self.sell_rate).quantize(Decimal("0.1"))


@dataclass
class Simulation:
    ok: bool
    reason: str | None = None
    hangup_cause: str | None = None
    explanation: str | None = None
    customer_id: int | None = None
    customer: str | None = None
    currency: str | None = None
    endpoint_id: int | None = None
    endpoint: str | None = None
    destination: str | None = None
    destination_name: str | None = None
    sell_prefix: str | None = None
    sell_rate: Decimal | None = None
    max_duration: int | None = None
    routes: list[Route] = field(default_factory=list)
    # providers with a rate for the number left out for want of an exchange rate:
    # (name, their currency, why)
    fx_refused: list[tuple[str, str, str]] = field(default_factory=list)


def available(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regprocedure(%s) IS NOT NULL", (SIGNATURE,))
        return cur.fetchone()[0]


def clean_inputs(source_ip: str | None, sip_user: str | None, destination: str) -> tuple[str | None, str | None]:
    source_ip = (source_ip or "").strip() or None
    sip_user = (sip_user or "").strip() or None
    if source_ip:
        try:
            source_ip = str(ipaddress.ip_address(source_ip))
        except ValueError:
            raise SimulatorError(f"{source_ip!r} is not an IP address") from None
    if sip_user and not SIP_USER_RE.match(sip_user):
        raise SimulatorError("a SIP user is letters, digits and . _ + - (at most 64)")
    if not source_ip and not sip_user:
        raise SimulatorError("give a source IP or a SIP user (or pick an endpoint)")
    if not destination or len(destination) > 64:
        raise SimulatorError("type the number to dial")
    return source_ip, sip_user


def simulate(conn, source_ip: str | None, sip_user: str | None, caller_id: str | None, destination: str) -> Simulation:
    """Run route_preview once and shape its rows; places no hold, changes nothing."""
    source_ip, sip_user = clean_inputs(source_ip, sip_user, destination)
    if not available(conn):
        raise SimulatorUnavailable("the simulator needs billing.route_preview, which this database does not have yet "
                                   "(install the routing release and run `flask --app wsgi db upgrade`)")
    with conn.cursor() as cur:
        columns = COLUMNS + PREVIEW_COLUMNS if _has_preview_columns(cur) else COLUMNS
        cur.execute(f"SELECT {', '.join(columns)} FROM billing.route_preview(%s, %s::inet, %s, %s, %s)",
                    (f"simulator-{uuid.uuid4()}", source_ip, sip_user, caller_id or None, destination.strip()))
        rows = [dict.fromkeys(PREVIEW_COLUMNS) | dict(zip(columns, r)) for r in cur.fetchall()]
        if not rows:
            raise SimulatorError("route_preview returned no row (it should return exactly one when refusing)")
        first = rows[0]
        sim = Simulation(ok=bool(first["ok"]), reason=first["reason"], hangup_cause=first["hangup_cause"],
                         explanation=REASONS.get(first["reason"]), customer_id=first["customer_id"],
                         endpoint_id=first["endpoint_id"], destination=first["destination"],
                         sell_prefix=first["sell_prefix"], sell_rate=first["sell_rate"],
                         max_duration=first["max_duration"])
        if sim.customer_id is not None:
            cur.execute("SELECT name, currency FROM billing.customers WHERE id = %s", (sim.customer_id,))
            sim.customer, sim.currency = cur.fetchone() or (None, None)
        if sim.endpoint_id is not None:
            cur.execute("SELECT name FROM billing.endpoints WHERE id = %s", (sim.endpoint_id,))
            sim.endpoint = (cur.fetchone() or (None,))[0]
        if sim.destination and sim.destination.isdigit():
            cur.execute("""SELECT name FROM billing.destinations WHERE prefix = ANY (billing_private.prefixes(%s))
                           ORDER BY length(prefix) DESC LIMIT 1""", (sim.destination,))
            sim.destination_name = (cur.fetchone() or (None,))[0]
        if sim.ok:
            provider_ids = sorted({r["provider_id"] for r in rows if r["provider_id"] is not None})
            names = {}
            if provider_ids:
                cur.execute("SELECT id, name FROM billing.providers WHERE id = ANY(%s)", (provider_ids,))
                names = dict(cur.fetchall())
            sim.routes = [Route(seq=r["route_seq"], gateway=r["gateway"], dial_string=r["dial_string"],
                                provider_id=r["provider_id"], provider=names.get(r["provider_id"]),
                                sell_rate=r["sell_rate"],
                                cost_rate=r["converted_cost_rate"] if r["converted_cost_rate"] is not None
                                else r["cost_rate"],
                                cost_currency=r["cost_currency"],
                                original_cost_rate=r["cost_rate"] if r["exchange_rate"] is not None else None,
                                exchange_rate=r["exchange_rate"])
                          for r in sorted(rows, key=lambda r: r["route_seq"] or 0)]
        if sim.customer_id is not None and sim.destination and sim.destination.isdigit() and \
                sim.reason in (None, "no_route", "negative_margin") and _has_fx_refused(cur):
            cur.execute("SELECT provider, currency, customer_currency "
                        "FROM billing_private.route_fx_refused(%s, %s, now())", (sim.customer_id, sim.destination))
            sim.fx_refused = [(name, currency, FX_REFUSED.format(currency=currency, customer_currency=to))
                              for name, currency, to in cur.fetchall()]
            if sim.reason == "no_route" and sim.fx_refused:
                sim.explanation = (f"{REASONS['no_route']} {len(sim.fx_refused)} provider(s) with a rate for this "
                                   "number were left out for want of an exchange rate into the customer's currency.")
    return sim


def _has_preview_columns(cur) -> bool:
    """route_preview of 0110 or later (older databases answer CONTRACT 1's columns only)."""
    cur.execute("""SELECT count(*) = 3 FROM pg_proc p, unnest(p.proargnames) AS a(name)
                    WHERE p.oid = to_regprocedure(%s) AND a.name = ANY (%s)""", (SIGNATURE, PREVIEW_COLUMNS))
    return cur.fetchone()[0]


def _has_fx_refused(cur) -> bool:
    cur.execute("SELECT to_regprocedure('billing_private.route_fx_refused(bigint,text,timestamptz)') IS NOT NULL")
    return cur.fetchone()[0]


def endpoint_source(endpoint) -> tuple[str | None, str | None]:
    """(source IP, SIP user) that identify an endpoint: its CIDR's first address, or its user."""
    if endpoint.auth == "sip":
        return None, endpoint.username
    network = ipaddress.ip_network(str(endpoint.ip), strict=False)
    address = network.network_address if network.num_addresses == 1 else next(network.hosts())
    return str(address), None
