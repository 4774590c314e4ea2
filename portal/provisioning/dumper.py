"""`provision dump`: the database's configuration in the provisioning format.

Deterministic: entities sorted by name (destinations and rates by prefix, users by
e-mail) in Python's code-point order, every key of an entity written, rate rows written
without the keys that hold their default. Money is written as a decimal string with at
least two decimals; moments as a date when they fall on midnight in the database's time
zone, else as a date-time with its offset. Loading a dump into an empty database and
dumping again gives the same text (tests/provisioning/test_dump.py).

Secrets: the dump holds SIP and gateway passwords in clear text (FreeSWITCH needs them)
and the argon2 hashes of portal passwords (written as `password_hash`): treat it as one.
"""
from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from sqlalchemy import select, text

from ..extensions import db
from ..models import (Customer, CustomerRatecard, Destination, Endpoint, ExchangeRate, Gateway, Permission,
                      PermissionWeight, Provider, Ratecard, RoutingRule, RoutingRuleProvider, Settings, User, Weight)
from .yamlio import FlowList, FlowMap, emit

HEADER = (
    "# Billing configuration (CONTRACT 3), written by `flask --app wsgi provision dump`.\n"
    "# Load it with `flask --app wsgi provision load FILE`. It holds SIP and gateway\n"
    "# passwords in clear text and portal password hashes: keep it secret.\n"
)

SETTINGS_KEYS = ("sip_domain", "max_call_seconds", "hold_grace_seconds", "quota_seconds", "reauth_margin_seconds",
                 "ring_timeout_seconds", "default_tax_rate", "low_balance_default",
                 "company_name", "company_address", "company_vat_id", "company_email", "invoice_footer",
                 "company_logo", "company_registration", "company_bank_details", "payment_terms_days",
                 "reminder_interval_days", "cdr_retention_months")


def decimal_text(value: Decimal | None) -> str | None:
    """'0.020000' -> '0.02', '10' -> '10.00', '0.012345' -> '0.012345'."""
    if value is None:
        return None
    digits = format(Decimal(value), "f")
    whole, _, fraction = digits.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


def moment_value(value: datetime | None):
    if value is None:
        return None
    if value.timetz().replace(tzinfo=None) == time(0):
        return value.date()
    return value


def _rate_rows(table: str, owner: str, owner_id: int) -> list[FlowMap]:
    rows = db.session.execute(text(
        f"SELECT prefix, rate, connect_fee, min_duration, increment_first, increment_next, valid_from, valid_to, blocked"
        f" FROM billing.{table} WHERE {owner} = :id"), {"id": owner_id}).all()
    rows = sorted(rows, key=lambda r: (r.prefix, r.valid_from is not None, r.valid_from or 0))
    out = []
    for r in rows:
        item = FlowMap(prefix=r.prefix, rate=decimal_text(r.rate))
        if r.connect_fee:
            item["connect_fee"] = decimal_text(r.connect_fee)
        if r.min_duration:
            item["min_duration"] = r.min_duration
        item["increment"] = f"{r.increment_first}/{r.increment_next}"
        if r.valid_from is not None:
            item["valid_from"] = moment_value(r.valid_from)
        if r.valid_to is not None:
            item["valid_to"] = moment_value(r.valid_to)
        if r.blocked:
            item["blocked"] = True
        out.append(item)
    return out


def _by_name(items):
    return sorted(items, key=lambda x: x.name)


def build() -> dict:
    """The configuration as a plain document (dicts and lists) in file order."""
    session = db.session
    settings = Settings.get()
    doc: dict = {"currency": settings.currency, "settings": {}}
    for key in SETTINGS_KEYS:
        value = getattr(settings, key)
        doc["settings"][key] = decimal_text(value) if isinstance(value, Decimal) else value

    weights = {w.id: w.name for w in session.scalars(select(Weight))}
    doc["weights"] = [{"name": name} for name in sorted(weights.values())]

    perm_weights: dict[int, list[str]] = {}
    for pw in session.scalars(select(PermissionWeight)):
        perm_weights.setdefault(pw.permission_id, []).append(weights[pw.weight_id])
    permissions = {p.id: p.name for p in session.scalars(select(Permission))}
    doc["permissions"] = [{"name": name, "weights": FlowList(sorted(perm_weights.get(pid, [])))}
                          for pid, name in sorted(permissions.items(), key=lambda kv: kv[1])]

    doc["destinations"] = [FlowMap(prefix=d.prefix, name=d.name, weight=weights[d.weight_id])
                           for d in sorted(session.scalars(select(Destination)), key=lambda d: d.prefix)]

    ratecards = {r.id: r.name for r in session.scalars(select(Ratecard))}
    doc["ratecards"] = [{"name": r.name, "currency": r.currency, "rates": _rate_rows("rates", "ratecard_id", r.id)}
                        for r in _by_name(session.scalars(select(Ratecard)))]

    providers = {p.id: p.name for p in session.scalars(select(Provider))}
    gateways: dict[int, list[Gateway]] = {}
    for g in session.scalars(select(Gateway)):
        gateways.setdefault(g.provider_id, []).append(g)
    doc["providers"] = []
    for p in _by_name(session.scalars(select(Provider))):
        doc["providers"].append({
            "name": p.name, "priority": p.priority, "enabled": p.enabled, "currency": p.currency,
            "gateways": [_gateway(g) for g in _by_name(gateways.get(p.id, []))],
            "rates": _rate_rows("provider_rates", "provider_id", p.id),
        })

    links: dict[int, list[CustomerRatecard]] = {}
    for link in session.scalars(select(CustomerRatecard)):
        links.setdefault(link.customer_id, []).append(link)
    rules: dict[int, dict[str, list[str]]] = {}
    for customer_id, prefix, provider_id in session.execute(
            select(RoutingRule.customer_id, RoutingRule.prefix, RoutingRuleProvider.provider_id)
            .outerjoin(RoutingRuleProvider, RoutingRuleProvider.routing_rule_id == RoutingRule.id)):
        names = rules.setdefault(customer_id, {}).setdefault(prefix, [])
        if provider_id is not None:
            names.append(providers[provider_id])
    endpoints: dict[int, list[Endpoint]] = {}
    for e in session.scalars(select(Endpoint)):
        endpoints.setdefault(e.customer_id, []).append(e)
    users: dict[int, list[User]] = {}
    for u in session.scalars(select(User).where(User.role == "customer")):
        users.setdefault(u.customer_id, []).append(u)

    doc["customers"] = []
    for c in _by_name(session.scalars(select(Customer))):
        doc["customers"].append({
            "name": c.name,
            "enabled": c.enabled,
            "billing": c.billing_type,
            "balance": decimal_text(c.balance),
            "credit_limit": decimal_text(c.credit_limit),
            "max_calls": c.max_calls,
            "allow_negative_margin": c.allow_negative_margin,
            "lcr_strategy": c.lcr_strategy,
            "low_balance_alert": decimal_text(c.low_balance_alert),
            "email": c.email,
            "currency": c.currency,
            "tax_rate": decimal_text(c.tax_rate),
            "daily_balance_email": c.daily_balance_email,
            "display_name": c.display_name,
            "legal_name": c.legal_name,
            "address": c.address,
            "vat_id": c.vat_id,
            "payment_terms_days": c.payment_terms_days,
            "ratecards": [FlowMap(name=ratecards[link.ratecard_id], priority=link.priority)
                          for link in sorted(links.get(c.id, []), key=lambda link: link.priority)],
            "routing_rules": [FlowMap(prefix=prefix, providers=FlowList(sorted(names)))
                              for prefix, names in sorted(rules.get(c.id, {}).items())],
            "endpoints": [_endpoint(e, permissions) for e in _by_name(endpoints.get(c.id, []))],
            "users": [FlowMap(email=u.email, password_hash=u.password_hash, active=u.active)
                      for u in sorted(users.get(c.id, []), key=lambda u: u.email)],
        })

    rates = session.scalars(select(ExchangeRate).order_by(ExchangeRate.from_currency, ExchangeRate.to_currency,
                                                           ExchangeRate.valid_from)).all()
    if rates:   # only when there are some: a single-currency dump stays as it was
        doc["exchange_rates"] = [FlowMap(**{"from": x.from_currency, "to": x.to_currency, "rate": x.rate_text,
                                            "valid_from": moment_value(x.valid_from),
                                            "valid_to": moment_value(x.valid_to)}) for x in rates]
    return doc


def _gateway(g: Gateway) -> dict:
    return {
        "name": g.name, "host": g.host, "port": g.port, "transport": g.transport, "max_channels": g.max_channels,
        "priority": g.priority, "strip_digits": g.strip_digits, "add_prefix": g.add_prefix, "enabled": g.enabled,
        "codecs": g.codecs, "username": g.username, "password": g.password, "register": g.register,
        "bypass_media": g.bypass_media, "ignore_early_media": g.ignore_early_media,
    }


def _endpoint(e: Endpoint, permissions: dict[int, str]) -> dict:
    return {
        "name": e.name, "auth": e.auth, "ip": e.ip, "username": e.username, "password": e.password,
        "permission": permissions[e.permission_id], "max_calls": e.max_calls, "strip_digits": e.strip_digits,
        "add_prefix": e.add_prefix, "spend_limit_month": decimal_text(e.spend_limit_month), "context": e.context,
        "codecs": e.codecs, "enabled": e.enabled, "bypass_media": e.bypass_media,
        "ignore_early_media": e.ignore_early_media,
    }


def dump_text() -> str:
    """The dump: one block per top-level key, separated by a blank line."""
    return HEADER + "\n".join(emit({key: value}) for key, value in build().items())
