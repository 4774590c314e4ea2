"""Small builders for test data, through the ORM inside the test's transaction.

Every builder flushes and returns the object, so ids are known. Balances go through
the ledger like everywhere else.
"""
from __future__ import annotations

from decimal import Decimal
from itertools import count

from portal.extensions import db
from portal.models import (Customer, CustomerRatecard, Destination, Endpoint, ExchangeRate, Gateway, LedgerEntry,
                           Permission, Provider, ProviderRate, Ratecard, SellRate, User, Weight)
from portal.security import hash_password

_seq = count(1)


def _n(prefix: str) -> str:
    return f"{prefix}{next(_seq)}"


def _add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def user(email: str, password: str, role: str = "customer", customer: Customer | None = None) -> User:
    return _add(User(email=email.lower(), password_hash=hash_password(password), role=role,
                     customer_id=customer.id if customer else None))


def weight(name: str | None = None) -> Weight:
    return _add(Weight(name=name or _n("w")))


def permission(weights: list[Weight], name: str | None = None) -> Permission:
    p = Permission(name=name or _n("perm"))
    p.weights = list(weights)
    return _add(p)


def destination(prefix: str, weight_: Weight, name: str | None = None) -> Destination:
    return _add(Destination(prefix=prefix, name=name or f"Dest {prefix}", weight_id=weight_.id))


def ratecard(name: str | None = None, currency: str = "EUR") -> Ratecard:
    return _add(Ratecard(name=name or _n("rc"), currency=currency))


def sell_rate(card: Ratecard, prefix: str, rate: str, increment: str = "60/60", **kw) -> SellRate:
    first, nxt = (int(x) for x in increment.split("/"))
    return _add(SellRate(ratecard_id=card.id, prefix=prefix, rate=Decimal(rate),
                         increment_first=first, increment_next=nxt, **kw))


def customer(name: str | None = None, balance: str = "0", ratecards: list[Ratecard] = (), **kw) -> Customer:
    c = _add(Customer(name=name or _n("cust"), **kw))
    for priority, card in enumerate(ratecards, start=1):
        _add(CustomerRatecard(customer_id=c.id, ratecard_id=card.id, priority=priority))
    if Decimal(balance):
        topup(c, balance, kind="initial")
    return c


def topup(c: Customer, amount: str, kind: str = "topup") -> LedgerEntry:
    entry = _add(LedgerEntry(customer_id=c.id, kind=kind, amount=Decimal(amount)))
    db.session.refresh(c)
    return entry


_ip_seq = count(1)


def unique_ip() -> str:
    """A /32 of 198.18.0.0/15 (RFC 2544, benchmarking) that no other call returns: an IP
    range belongs to one customer (migration 0090), so endpoints built without an `ip`
    must never overlap."""
    n = next(_ip_seq)
    return f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}/32"


def endpoint(c: Customer, perm: Permission, auth: str = "ip", ip: str | None = None,
             username: str | None = None, password: str | None = None, name: str | None = None, **kw) -> Endpoint:
    if auth == "ip" and ip is None:
        ip = unique_ip()
    if auth == "sip":
        ip = None
        username = username or _n("sipuser")
        password = password or "secret-password"
    return _add(Endpoint(customer_id=c.id, name=name or _n("ep"), auth=auth, ip=ip, username=username,
                         password=password, permission_id=perm.id, **kw))


def provider(name: str | None = None, **kw) -> Provider:
    return _add(Provider(name=name or _n("prov"), **kw))


def gateway(p: Provider, name: str | None = None, host: str = "192.0.2.10", **kw) -> Gateway:
    return _add(Gateway(provider_id=p.id, name=name or _n("gw"), host=host, **kw))


def provider_rate(p: Provider, prefix: str, rate: str, increment: str = "1/1", **kw) -> ProviderRate:
    first, nxt = (int(x) for x in increment.split("/"))
    return _add(ProviderRate(provider_id=p.id, prefix=prefix, rate=Decimal(rate),
                             increment_first=first, increment_next=nxt, **kw))


def exchange_rate(from_currency: str, to_currency: str, rate: str, valid_from, valid_to=None) -> ExchangeRate:
    return _add(ExchangeRate(from_currency=from_currency, to_currency=to_currency, rate=Decimal(rate),
                             valid_from=valid_from, valid_to=valid_to))
