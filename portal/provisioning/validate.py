"""Check a parsed provisioning document without touching the database.

`validate(document, base_dir)` returns a `Config` whose entries carry their path in the
file (`customers[1].endpoints[0]`) and only the keys the file gave, converted to the
values stored (Decimal, digit strings, normalised CIDRs, (first, next) increments).
Every problem found is collected; `ProvisioningError` lists them all, each starting
with the path of the offending key.
"""
from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import fields as f
from .errors import ProvisioningError

CHILD = object()  # a key whose value is a nested list, checked by its own method
INT_MAX = 2**31 - 1

SETTINGS = {
    "sip_domain": f.sip_domain,
    "max_call_seconds": f.integer(1, 604800),
    "hold_grace_seconds": f.integer(0, INT_MAX),
    "quota_seconds": f.nullable(f.integer(2, 604800)),
    "reauth_margin_seconds": f.integer(1, 3600),
    "ring_timeout_seconds": f.integer(5, 600),
    "default_tax_rate": f.tax_rate,
    "low_balance_default": f.nullable(f.money),
    "company_name": f.text,
    "company_address": f.text,
    "company_vat_id": f.text,
    "company_email": f.email,
    "invoice_footer": f.text,
    "company_logo": f.pattern(re.compile(r"^(([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.(png|svg|jpg|jpeg))?$"),
                              "must be a file under static/ such as img/logo.svg, or ''"),
    "company_registration": lambda v: f.text(v, 1000),
    "company_bank_details": lambda v: f.text(v, 1000),
    "payment_terms_days": f.integer(0, 365),
    "reminder_interval_days": f.integer(0, 365),
    "cdr_retention_months": f.integer(0, 1200),
}

RATE = {
    "prefix": f.prefix,
    "rate": f.rate,
    "connect_fee": f.rate,
    "min_duration": f.integer(0, INT_MAX),
    "increment": f.increment,
    "valid_from": f.nullable(f.moment),
    "valid_to": f.nullable(f.moment),
    "blocked": f.boolean,
}
RATE_DEFAULTS = {"connect_fee": 0, "min_duration": 0, "increment": (60, 60), "valid_from": None,
                 "valid_to": None, "blocked": False}

WEIGHT = {"name": f.name}
PERMISSION = {"name": f.name, "weights": CHILD}
DESTINATION = {"prefix": f.prefix, "name": lambda v: _sized_text(v, 1, 200), "weight": f.name}
RATECARD = {"name": f.name, "currency": f.currency, "rates": CHILD, "csv": CHILD}
PROVIDER = {"name": f.name, "priority": f.integer(-INT_MAX, INT_MAX), "enabled": f.boolean,
            "currency": f.currency, "gateways": CHILD, "rates": CHILD, "csv": CHILD}
GATEWAY = {
    "name": f.name,
    "host": f.host,
    "port": f.integer(1, 65535),
    "transport": f.one_of("udp", "tcp", "tls"),
    "max_channels": f.nullable(f.integer(1, INT_MAX)),
    "priority": f.integer(-INT_MAX, INT_MAX),
    "strip_digits": f.integer(0, 20),
    "add_prefix": f.digits_or_empty,
    "enabled": f.boolean,
    "codecs": f.nullable(f.codecs),
    "username": f.nullable(f.gateway_username),
    "password": f.nullable(lambda v: _sized_text(v, 1, 128)),
    "register": f.boolean,
    "bypass_media": f.boolean,
    "ignore_early_media": f.boolean,
}
CUSTOMER = {
    "name": f.name,
    "enabled": f.boolean,
    "billing": f.one_of("prepaid", "postpaid"),
    "balance": f.money,
    "credit_limit": f.non_negative_money,
    "max_calls": f.nullable(f.integer(0, INT_MAX)),
    "allow_negative_margin": f.boolean,
    "lcr_strategy": f.one_of("cost", "quality", "reliability", "equal", "priority"),
    "low_balance_alert": f.nullable(f.money),
    "email": f.nullable(f.email),
    "currency": f.currency,
    "tax_rate": f.nullable(f.tax_rate),
    "daily_balance_email": f.boolean,
    "display_name": f.nullable(lambda v: _one_line_text(v, 200)),
    "legal_name": f.nullable(lambda v: _one_line_text(v, 200)),
    "address": f.nullable(lambda v: f.text(v, 1000)),
    "vat_id": f.nullable(f.vat_id),
    "payment_terms_days": f.nullable(f.integer(0, 365)),
    "ratecards": CHILD,
    "routing_rules": CHILD,
    "endpoints": CHILD,
    "users": CHILD,
}
CUSTOMER_RATECARD = {"name": f.name, "priority": f.integer(1, INT_MAX)}
ROUTING_RULE = {"prefix": f.prefix, "providers": CHILD}
ENDPOINT = {
    "name": f.name,
    "auth": f.one_of("ip", "sip"),
    "ip": f.nullable(f.cidr),
    "username": f.nullable(f.endpoint_username),
    "password": f.nullable(lambda v: _sized_text(v, 8, 128)),
    "permission": f.name,
    "max_calls": f.nullable(f.integer(0, INT_MAX)),
    "strip_digits": f.integer(0, 20),
    "add_prefix": f.digits_or_empty,
    "spend_limit_month": f.nullable(f.non_negative_money),
    "context": f.name,
    "codecs": f.nullable(f.codecs),
    "enabled": f.boolean,
    "bypass_media": f.boolean,
    "ignore_early_media": f.boolean,
}
USER = {"email": f.email, "password": f.text, "password_hash": f.password_hash, "active": f.boolean}
# 1 `from` = rate `to`, valid in [valid_from, valid_to); matched by (from, to, valid_from)
EXCHANGE_RATE = {"from": f.currency, "to": f.currency, "rate": f.exchange_rate, "valid_from": f.moment,
                 "valid_to": f.nullable(f.moment)}
TOP = {"currency": f.currency, "settings": CHILD, "weights": CHILD, "permissions": CHILD, "destinations": CHILD,
       "ratecards": CHILD, "providers": CHILD, "customers": CHILD, "exchange_rates": CHILD}

MIN_USER_PASSWORD = 10


def _one_line_text(value, high: int) -> str:
    """A name on one line: 1 to `high` characters, not only blanks, no line breaks."""
    text = _sized_text(value, 1, high)
    if not text.strip() or any(ch in text for ch in "\r\n\t"):
        raise f.Invalid(f"must be 1 to {high} characters on one line")
    return text


def _sized_text(value, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise f.Invalid("must be text")
    if not low <= len(value) <= high:
        raise f.Invalid(f"must be {low} to {high} characters")
    return str(value)


@dataclass
class Entry:
    """One mapping of the file: its path and the converted values of the keys it gave."""

    path: str
    values: dict
    children: dict = field(default_factory=dict)
    invalid: set = field(default_factory=set)  # keys given with a value already reported

    def missing(self, key) -> bool:
        """Neither given validly nor reported already: worth a 'required' error."""
        return self.values.get(key) is None and key not in self.invalid

    def __getitem__(self, key):
        return self.values[key]

    def get(self, key, default=None):
        return self.values.get(key, default)

    def __contains__(self, key):
        return key in self.values


@dataclass
class RateList:
    """The complete rate list of a ratecard or provider (it replaces the stored one)."""

    path: str
    rows: list[dict]


@dataclass
class Config:
    currency: str | None = None
    settings: Entry | None = None
    weights: list[Entry] = field(default_factory=list)
    permissions: list[Entry] = field(default_factory=list)
    destinations: list[Entry] = field(default_factory=list)
    ratecards: list[Entry] = field(default_factory=list)
    providers: list[Entry] = field(default_factory=list)
    customers: list[Entry] = field(default_factory=list)
    exchange_rates: list[Entry] = field(default_factory=list)


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _hint(key, spec) -> str:
    if isinstance(key, str):
        close = difflib.get_close_matches(key, list(spec), n=1, cutoff=0.75)
        if close:
            return f" (did you mean {close[0]!r}?)"
    return ""


class Validator:
    def __init__(self, base_dir: Path | None = None):
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    # ------------------------------------------------------------------ generic shapes
    def mapping(self, raw, path: str, spec: dict, required=("name",)) -> Entry | None:
        if not isinstance(raw, dict):
            self.error(path, "expected a mapping of keys to values")
            return None
        entry = Entry(path, {})
        for key, value in raw.items():
            convert = spec.get(key) if isinstance(key, str) else None
            if convert is None:
                self.error(_join(path, key), "unknown key" + _hint(key, spec))
            elif convert is CHILD:
                entry.children[key] = value
            else:
                try:
                    entry.values[key] = convert(value)
                except f.Invalid as exc:
                    self.error(_join(path, key), str(exc))
                    entry.invalid.add(key)
        for key in required:
            if key not in raw:
                self.error(_join(path, key), "required")
        return entry

    def listing(self, raw, path: str) -> list[tuple[str, object]]:
        if not isinstance(raw, list):
            self.error(path, "expected a list (write [] for none)")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(raw)]

    def entries(self, raw, path: str, spec: dict, required=("name",)) -> list[Entry]:
        out = []
        for item_path, item in self.listing(raw, path):
            entry = self.mapping(item, item_path, spec, required)
            if entry is not None:
                out.append(entry)
        return out

    def unique(self, entries: list[Entry], key: str, seen: dict | None = None) -> None:
        """Report entries whose `key` repeats an earlier one (`seen` spans several lists)."""
        seen = {} if seen is None else seen
        for entry in entries:
            value = entry.get(key)
            if value is None:
                continue
            if value in seen:
                self.error(_join(entry.path, key), f"duplicate of {seen[value]}")
            else:
                seen[value] = entry.path

    def names(self, raw, path: str) -> list[tuple[str, str]]:
        """A list of names (weights of a permission, providers of a routing rule), each
        with its path for errors about references."""
        out, seen = [], {}
        for item_path, item in self.listing(raw, path):
            try:
                value = f.name(item)
            except f.Invalid as exc:
                self.error(item_path, str(exc))
                continue
            if value in seen:
                self.error(item_path, f"duplicate of {seen[value]}")
            else:
                seen[value] = item_path
                out.append((item_path, value))
        return out

    # ------------------------------------------------------------------ the document
    def document(self, raw) -> Config:
        config = Config()
        if raw is None:
            self.error("(file)", "the file is empty")
            return config
        top = self.mapping(raw, "", TOP, required=())
        if top is None:
            return config
        config.currency = top.get("currency")
        children = top.children
        if "settings" in children:
            config.settings = self.mapping(children["settings"], "settings", SETTINGS, required=())
            values = config.settings.values if config.settings else {}
            quota, margin = values.get("quota_seconds"), values.get("reauth_margin_seconds")
            if quota is not None and margin is not None and margin >= quota:
                self.error("settings.reauth_margin_seconds", f"must be shorter than quota_seconds ({quota})")
        if "weights" in children:
            config.weights = self.entries(children["weights"], "weights", WEIGHT)
            self.unique(config.weights, "name")
        if "permissions" in children:
            config.permissions = self.entries(children["permissions"], "permissions", PERMISSION)
            self.unique(config.permissions, "name")
            for entry in config.permissions:
                if "weights" in entry.children:
                    entry.values["weights"] = self.names(entry.children["weights"], _join(entry.path, "weights"))
        if "destinations" in children:
            config.destinations = self.entries(children["destinations"], "destinations", DESTINATION,
                                               required=("prefix", "name", "weight"))
            self.unique(config.destinations, "prefix")
        if "ratecards" in children:
            config.ratecards = self.entries(children["ratecards"], "ratecards", RATECARD)
            self.unique(config.ratecards, "name")
            for entry in config.ratecards:
                self.rate_list(entry)
        if "providers" in children:
            config.providers = self.entries(children["providers"], "providers", PROVIDER)
            self.unique(config.providers, "name")
            gateway_names: dict = {}
            for entry in config.providers:
                self.rate_list(entry)
                if "gateways" in entry.children:
                    gateways = self.entries(entry.children["gateways"], _join(entry.path, "gateways"), GATEWAY,
                                            required=("name", "host"))
                    self.unique(gateways, "name", gateway_names)
                    for gateway in gateways:
                        self.gateway_rules(gateway)
                    entry.values["gateways"] = gateways
        if "customers" in children:
            config.customers = self.entries(children["customers"], "customers", CUSTOMER)
            self.unique(config.customers, "name")
            endpoint_names: dict = {}
            sip_users: dict = {}
            emails: dict = {}
            for entry in config.customers:
                self.customer(entry, endpoint_names, sip_users, emails)
        if "exchange_rates" in children:
            config.exchange_rates = self.entries(children["exchange_rates"], "exchange_rates", EXCHANGE_RATE,
                                                 required=("from", "to", "rate", "valid_from"))
            seen: dict = {}
            for entry in config.exchange_rates:
                if entry.get("from") and entry.get("from") == entry.get("to"):
                    self.error(_join(entry.path, "to"), "must differ from `from`")
                if "valid_from" in entry and not _before(entry["valid_from"], entry.get("valid_to")):
                    self.error(_join(entry.path, "valid_to"), "must be after valid_from")
                key = (entry.get("from"), entry.get("to"), f.moment_text(entry.get("valid_from")))
                if None not in key:
                    if key in seen:
                        self.error(entry.path, f"duplicate of {seen[key]} (same from, to and valid_from)")
                    seen.setdefault(key, entry.path)
        return config

    def gateway_rules(self, gateway: Entry) -> None:
        if gateway.get("register"):
            for key in ("username", "password"):
                if gateway.missing(key):
                    self.error(_join(gateway.path, key), "required when register is true")

    def customer(self, entry: Entry, endpoint_names: dict, sip_users: dict, emails: dict) -> None:
        if entry.get("billing") == "prepaid" and entry.get("credit_limit", 0) != 0:
            self.error(_join(entry.path, "credit_limit"), "must be 0 for a prepaid customer (credit is for postpaid)")
        children = entry.children
        if "ratecards" in children:
            links = []
            for position, (item_path, item) in enumerate(self.listing(children["ratecards"], _join(entry.path, "ratecards"))):
                link = self.mapping(item, item_path, CUSTOMER_RATECARD)
                if link is not None:
                    link.values.setdefault("priority", position + 1)
                    links.append(link)
            self.unique(links, "name")
            self.unique(links, "priority")
            entry.values["ratecards"] = links
        if "routing_rules" in children:
            rules = self.entries(children["routing_rules"], _join(entry.path, "routing_rules"), ROUTING_RULE,
                                 required=("prefix", "providers"))
            self.unique(rules, "prefix")
            for rule in rules:
                if "providers" in rule.children:
                    providers_path = _join(rule.path, "providers")
                    rule.values["providers"] = self.names(rule.children["providers"], providers_path)
                    if isinstance(rule.children["providers"], list) and not rule.children["providers"]:
                        self.error(providers_path, "name at least one provider")
            entry.values["routing_rules"] = rules
        if "endpoints" in children:
            endpoints = self.entries(children["endpoints"], _join(entry.path, "endpoints"), ENDPOINT,
                                     required=("name", "auth", "permission"))
            self.unique(endpoints, "name", endpoint_names)
            self.unique(endpoints, "username", sip_users)
            for endpoint in endpoints:
                self.endpoint_rules(endpoint)
            entry.values["endpoints"] = endpoints
        if "users" in children:
            users = self.entries(children["users"], _join(entry.path, "users"), USER, required=("email",))
            for user in users:
                if "email" in user:
                    user.values["email"] = user["email"].lower()
                if "password" in user and "password_hash" in user:
                    self.error(_join(user.path, "password"), "give either password or password_hash, not both")
                if "password" in user and len(user["password"]) < MIN_USER_PASSWORD:
                    self.error(_join(user.path, "password"), f"must be at least {MIN_USER_PASSWORD} characters")
            self.unique(users, "email", emails)
            entry.values["users"] = users

    def endpoint_rules(self, endpoint: Entry) -> None:
        auth = endpoint.get("auth")
        if auth == "ip" and endpoint.missing("ip"):
            self.error(_join(endpoint.path, "ip"), "required for auth: ip")
        if auth == "sip":
            for key in ("username", "password"):
                if endpoint.missing(key):
                    self.error(_join(endpoint.path, key), "required for auth: sip")

    # ------------------------------------------------------------------ rates
    def rate_list(self, entry: Entry) -> None:
        has_rates, has_csv = "rates" in entry.children, "csv" in entry.children
        if has_rates and has_csv:
            self.error(_join(entry.path, "csv"), "give either rates or csv, not both")
            return
        if has_rates:
            path = _join(entry.path, "rates")
            rows, seen = [], {}
            for item_path, item in self.listing(entry.children["rates"], path):
                row = self.rate_row(item, item_path, lambda key, message, p=item_path: self.error(_join(p, key), message))
                if row is not None:
                    self.unique_rate(row, seen, item_path, lambda message, p=item_path: self.error(p, message))
                    rows.append(row)
            entry.values["rates"] = RateList(path, rows)
        elif has_csv:
            entry.values["rates"] = self.csv_rates(entry.children["csv"], _join(entry.path, "csv"))

    def rate_row(self, raw, path: str, report) -> dict | None:
        """Check one rate (inline mapping or CSV row); `report(key, message)` records errors."""
        if not isinstance(raw, dict):
            self.error(path, "expected a mapping of keys to values")
            return None
        row = dict(RATE_DEFAULTS)
        ok = True
        for key, value in raw.items():
            convert = RATE.get(key) if isinstance(key, str) else None
            if convert is None:
                report(key, "unknown key" + _hint(key, RATE))
                ok = False
                continue
            try:
                row[key] = convert(value)
            except f.Invalid as exc:
                report(key, str(exc))
                ok = False
        for key in ("prefix", "rate"):
            if key not in raw:
                report(key, "required")
                ok = False
        if ok and not _before(row["valid_from"], row["valid_to"]):
            report("valid_to", "must be after valid_from")
            ok = False
        return row if ok else None

    def unique_rate(self, row: dict, seen: dict, where: str, report) -> None:
        key = (row["prefix"], f.moment_text(row["valid_from"]))
        if key in seen:
            report(f"duplicate of {seen[key]} (same prefix and valid_from)")
        else:
            seen[key] = where

    def csv_rates(self, raw, path: str) -> RateList | None:
        try:
            relative = f.text(raw)
        except f.Invalid:
            self.error(path, "must be the path of a CSV file, relative to the YAML file")
            return None
        file_path = self.base_dir / relative
        try:
            content = file_path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.error(path, f"cannot read {relative}: {reason}")
            return None
        reader = csv.reader(io.StringIO(content, newline=""))
        header = next(reader, None)
        if not header:
            self.error(path, f"{relative} line 1: empty file (expected a header: prefix,rate,...)")
            return None
        columns = [c.strip() for c in header]
        bad = False
        for column in columns:
            if column not in RATE:
                self.error(path, f"{relative} line 1: unknown column {column!r}")
                bad = True
        for column in ("prefix", "rate"):
            if column not in columns:
                self.error(path, f"{relative} line 1: missing column {column!r}")
                bad = True
        if len(set(columns)) != len(columns):
            self.error(path, f"{relative} line 1: a column appears twice")
            bad = True
        if bad:
            return None
        rows, seen = [], {}
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            where = f"{relative} line {line}"
            if len(cells) != len(columns):
                self.error(path, f"{where}: expected {len(columns)} fields, found {len(cells)}")
                continue
            raw_row = {}
            for column, cell in zip(columns, cells):
                cell = cell.strip()
                if cell == "":
                    continue
                if column == "blocked":
                    cell = _csv_bool(cell)
                raw_row[column] = cell
            row = self.rate_row(raw_row, path, lambda key, message, w=where: self.error(path, f"{w}: {key}: {message}"))
            if row is not None:
                self.unique_rate(row, seen, f"line {line}", lambda message, w=where: self.error(path, f"{w}: {message}"))
                rows.append(row)
        return RateList(path, rows)


def _csv_bool(cell: str):
    lowered = cell.lower()
    if lowered in ("true", "yes", "1", "t", "y"):
        return True
    if lowered in ("false", "no", "0", "f", "n"):
        return False
    return cell  # not a bool: the converter reports it


def _before(start, end) -> bool:
    """valid_from < valid_to, when Python can compare them (the database checks the rest)."""
    if start is None or end is None:
        return True
    if isinstance(start, datetime) != isinstance(end, datetime):
        start = start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
        end = end if isinstance(end, datetime) else datetime.combine(end, datetime.min.time())
    if isinstance(start, datetime) and (start.tzinfo is None) != (end.tzinfo is None):
        return True
    return start < end


def validate(document, base_dir: Path | None = None) -> Config:
    validator = Validator(base_dir)
    config = validator.document(document)
    if validator.errors:
        raise ProvisioningError(validator.errors)
    return config


__all__ = ["Config", "Entry", "RateList", "validate"]
