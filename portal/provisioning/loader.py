"""Load a provisioning file (CONTRACT 3) into the database, in one transaction.

Order of work: parse (YAML, numbers kept as text) -> validate (pure Python, every error
collected with its path) -> check references and ownership against the database (reads
only) -> upsert. Any error rolls the whole transaction back, so a failed load changes
nothing. Database constraint violations that slip past validation are reported with the
path of the entry being written.

Upsert rules (docs/provisioning.md):
* entities are matched by name (destinations by prefix, users by e-mail) and never
  deleted by a load;
* a key absent from an entry leaves an existing value unchanged (a new entry gets the
  default); `null` sets a nullable value to NULL;
* a list given under an entry is that entry's complete list and replaces the stored one:
  a ratecard's or provider's `rates` (or `csv`), a permission's `weights`, a customer's
  `ratecards` and `routing_rules`. Endpoints, gateways and users listed under their
  owner are upserted; the ones not listed are kept;
* `balance` is applied only when the customer is created, as an `initial` ledger entry.
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from .. import audit, ipranges
from ..extensions import db
from ..ledger.services import LedgerError, post_entry
from ..models import (Customer, CustomerRatecard, Endpoint, Gateway, Permission, PermissionWeight,
                      Provider, Ratecard, RoutingRule, RoutingRuleProvider, Settings, User, Weight)
from ..security import hash_password, verify_password
from . import fields
from .errors import ProvisioningError
from .validate import Config, Entry, RateList, validate
from .yamlio import MAX_CHARS, YamlSyntaxError, parse

# Friendly words for constraints a file can still trip over (state in the database).
CONSTRAINT_MESSAGES = {
    "uq_endpoints_username": "this SIP username is already used by another endpoint",
    "uq_endpoints_name": "an endpoint with this name already exists",
    "ex_endpoints_ip_one_customer": "overlaps an IP endpoint of another customer (an IP range belongs to one customer)",
    "uq_endpoints_ip": "another endpoint has this very IP range",
    "uq_gateways_name": "a gateway with this name already exists",
    "uq_users_email": "a portal user with this e-mail already exists",
    "ck_customers_prepaid_no_credit": "a prepaid customer cannot have a credit limit: set credit_limit to 0 or billing to postpaid",
    "ck_endpoints_ip_auth": "auth: ip needs an ip",
    "ck_endpoints_sip_auth": "auth: sip needs a username and a password",
    "ck_gateways_register_needs_credentials": "register: true needs a username and a password",
    "ck_rates_validity": "a rate's valid_to must be after its valid_from",
    "ck_provider_rates_validity": "a rate's valid_to must be after its valid_from",
    "ck_customer_ratecards_currency": "a customer's ratecards must be in the customer's currency",
    "ck_exchange_rates_validity": "valid_to must be after valid_from",
}

ACTIONS = ("created", "updated", "unchanged", "deleted")


class Summary:
    """What a load did, per kind of entity."""

    def __init__(self):
        self.counts: dict[str, Counter] = {}

    def add(self, kind: str, action: str, n: int = 1) -> None:
        self.counts.setdefault(kind, Counter())[action] += n

    def lines(self) -> list[str]:
        out = []
        for kind, counter in self.counts.items():
            parts = [f"{counter[a]} {a}" for a in ACTIONS if counter[a]]
            out.append(f"{kind}: {', '.join(parts) if parts else 'none'}")
        return out

    def as_dict(self) -> dict:
        return {kind: dict(counter) for kind, counter in self.counts.items()}


def describe_db_error(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint in CONSTRAINT_MESSAGES:
        return CONSTRAINT_MESSAGES[constraint]
    primary = getattr(diag, "message_primary", None) or str(exc.orig).strip().splitlines()[0]
    return f"rejected by the database: {primary}" + (f" ({constraint})" if constraint else "")


def _assign(obj, values: dict) -> bool:
    """Set attributes that differ; True when anything changed."""
    changed = False
    for attr, value in values.items():
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            changed = True
    return changed


def _columns(entry: Entry, renames: dict | None = None, skip: tuple = ()) -> dict:
    renames = renames or {}
    return {renames.get(k, k): v for k, v in entry.values.items() if k not in skip and not isinstance(v, (list, RateList))}


RATE_SQL = {
    table: (
        f"DELETE FROM billing.{table} r WHERE r.{owner} = :owner_id AND NOT EXISTS ("
        " SELECT FROM unnest(CAST(:prefix AS text[]), CAST(:valid_from AS timestamptz[])) AS i(prefix, valid_from)"
        " WHERE i.prefix = r.prefix AND i.valid_from IS NOT DISTINCT FROM r.valid_from)",
        f"INSERT INTO billing.{table} AS r ({owner}, prefix, rate, connect_fee, min_duration, increment_first,"
        " increment_next, valid_from, valid_to, blocked)"
        " SELECT :owner_id, i.* FROM unnest(CAST(:prefix AS text[]), CAST(:rate AS numeric[]),"
        " CAST(:connect_fee AS numeric[]), CAST(:min_duration AS integer[]), CAST(:first AS integer[]),"
        " CAST(:next AS integer[]), CAST(:valid_from AS timestamptz[]), CAST(:valid_to AS timestamptz[]),"
        " CAST(:blocked AS boolean[])) AS i"
        f" ON CONFLICT ON CONSTRAINT uq_{table}_{owner}_prefix_valid_from DO UPDATE SET"
        " rate = EXCLUDED.rate, connect_fee = EXCLUDED.connect_fee, min_duration = EXCLUDED.min_duration,"
        " increment_first = EXCLUDED.increment_first, increment_next = EXCLUDED.increment_next,"
        " valid_to = EXCLUDED.valid_to, blocked = EXCLUDED.blocked"
        " WHERE (r.rate, r.connect_fee, r.min_duration, r.increment_first, r.increment_next, r.valid_to, r.blocked)"
        " IS DISTINCT FROM (EXCLUDED.rate, EXCLUDED.connect_fee, EXCLUDED.min_duration, EXCLUDED.increment_first,"
        " EXCLUDED.increment_next, EXCLUDED.valid_to, EXCLUDED.blocked)"
        " RETURNING (r.xmax = 0) AS inserted",
    )
    for table, owner in (("rates", "ratecard_id"), ("provider_rates", "provider_id"))
}


EXCHANGE_RATES_SQL = (
    "INSERT INTO billing.exchange_rates AS x (from_currency, to_currency, rate, valid_from, valid_to, created_by)"
    " VALUES (:from_currency, :to_currency, :rate, CAST(:valid_from AS timestamptz), CAST(:valid_to AS timestamptz),"
    " :actor)"
    " ON CONFLICT ON CONSTRAINT uq_exchange_rates_pair_valid_from DO UPDATE SET rate = EXCLUDED.rate,"
    " valid_to = EXCLUDED.valid_to"
    " WHERE (x.rate, x.valid_to) IS DISTINCT FROM (EXCLUDED.rate, EXCLUDED.valid_to)"
    " RETURNING (x.xmax = 0) AS inserted"
)


DESTINATIONS_SQL = (
    "INSERT INTO billing.destinations AS d (prefix, name, weight_id)"
    " SELECT * FROM unnest(CAST(:prefix AS text[]), CAST(:name AS text[]), CAST(:weight_id AS bigint[]))"
    " ON CONFLICT ON CONSTRAINT uq_destinations_prefix DO UPDATE SET name = EXCLUDED.name, weight_id = EXCLUDED.weight_id"
    " WHERE (d.name, d.weight_id) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.weight_id)"
    " RETURNING (d.xmax = 0) AS inserted"
)


class Applier:
    """Writes a validated Config through the ORM session (the caller commits)."""

    def __init__(self, config: Config, actor: str):
        self.config = config
        self.actor = actor
        self.session = db.session
        self.summary = Summary()
        self.ids: dict[str, dict[str, int]] = {"weight": {}, "permission": {}, "ratecard": {}, "provider": {}}

    # ---------------------------------------------------------------- plumbing
    @contextmanager
    def at(self, path: str):
        """Flush the work done for one entry; a database error names that entry."""
        try:
            with self.session.no_autoflush:
                yield
            self.session.flush()
        except DBAPIError as exc:
            raise ProvisioningError(f"{path}: {describe_db_error(exc)}") from exc

    def _known(self, model, names: set[str]) -> dict[str, int]:
        if not names:
            return {}
        return dict(self.session.execute(select(model.name, model.id).where(model.name.in_(sorted(names)))).all())

    # ---------------------------------------------------------------- checks (read only)
    def check(self) -> None:
        c = self.config
        errors: list[str] = []

        def check_refs(kind: str, model, file_entries: list[Entry], refs: list[tuple[str, str]]):
            in_file = {e["name"] for e in file_entries if "name" in e}
            known = self._known(model, {name for _, name in refs} - in_file)
            self.ids[kind].update(known)
            for path, name in refs:
                if name not in in_file and name not in known:
                    errors.append(f"{path}: unknown {kind} {name!r}")

        weight_refs = [ref for p in c.permissions for ref in p.get("weights", [])]
        weight_refs += [(f"{d.path}.weight", d["weight"]) for d in c.destinations]
        check_refs("weight", Weight, c.weights, weight_refs)
        endpoints = [(cust, e) for cust in c.customers for e in cust.get("endpoints", [])]
        check_refs("permission", Permission, c.permissions, [(f"{e.path}.permission", e["permission"]) for _, e in endpoints])
        check_refs("ratecard", Ratecard, c.ratecards,
                   [(f"{link.path}.name", link["name"]) for cust in c.customers for link in cust.get("ratecards", [])])
        check_refs("provider", Provider, c.providers,
                   [ref for cust in c.customers for rule in cust.get("routing_rules", []) for ref in rule.get("providers", [])])

        self._check_ratecard_currencies(errors)

        # Entities matched by a globally unique name must not belong to another owner.
        gateways = [(p, g) for p in c.providers for g in p.get("gateways", [])]
        self._check_owners("gateway", Gateway, "provider", Provider, gateways, errors)
        self._check_owners("endpoint", Endpoint, "customer", Customer, endpoints, errors)
        if endpoints:
            self._check_sip_usernames(endpoints, errors)
            self._check_ip_ranges(endpoints, errors)
        users = [(cust, u) for cust in c.customers for u in cust.get("users", [])]
        if users:
            rows = self.session.execute(select(User.email, User.role, Customer.name).outerjoin(Customer, User.customer_id == Customer.id)
                                        .where(User.email.in_([u["email"] for _, u in users]))).all()
            existing = {email: (role, owner) for email, role, owner in rows}
            for customer, user in users:
                found = existing.get(user["email"])
                if found is None:
                    if "password" not in user and "password_hash" not in user:
                        errors.append(f"{user.path}.password: required for a new user")
                elif found[0] != "customer":
                    errors.append(f"{user.path}.email: {user['email']!r} is an admin login")
                elif found[1] != customer["name"]:
                    errors.append(f"{user.path}.email: {user['email']!r} belongs to customer {found[1]!r}")
        if errors:
            raise ProvisioningError(errors)

    def _check_ratecard_currencies(self, errors: list[str]) -> None:
        """A customer's ratecards are in its currency (0111): the file's currency of each,
        else the stored one, else the file's (or the settings') default for a new one."""
        c = self.config
        default = c.currency or Settings.get().currency
        card_names = {link["name"] for cust in c.customers for link in cust.get("ratecards", [])}
        customer_names = {cust["name"] for cust in c.customers if "name" in cust}
        stored_cards = dict(self.session.execute(select(Ratecard.name, Ratecard.currency)
                                                 .where(Ratecard.name.in_(sorted(card_names)))).all()) if card_names else {}
        stored_customers = dict(self.session.execute(select(Customer.name, Customer.currency)
                                                     .where(Customer.name.in_(sorted(customer_names)))).all()) \
            if customer_names else {}
        file_cards = {r["name"]: r.get("currency") for r in c.ratecards if "name" in r}
        for cust in c.customers:
            if "name" not in cust:
                continue
            currency = cust.get("currency") or stored_customers.get(cust["name"]) or default
            links = cust.get("ratecards")
            if links is None:   # links kept as stored: check them against a new currency
                if "currency" not in cust or cust["name"] not in stored_customers:
                    continue
                rows = self.session.execute(select(Ratecard.name, Ratecard.currency)
                                            .join(CustomerRatecard, CustomerRatecard.ratecard_id == Ratecard.id)
                                            .join(Customer, Customer.id == CustomerRatecard.customer_id)
                                            .where(Customer.name == cust["name"])).all()
                for name, card_currency in rows:
                    card_currency = file_cards.get(name) or card_currency
                    if card_currency != currency:
                        errors.append(f"{cust.path}.currency: {currency} differs from its ratecard {name!r} "
                                      f"({card_currency}); a customer's ratecards must be in its currency")
                continue
            for link in links:
                name = link["name"]
                card_currency = file_cards.get(name) or stored_cards.get(name) or (default if name in file_cards else None)
                if card_currency is not None and card_currency != currency:
                    errors.append(f"{link.path}.name: ratecard {name!r} is in {card_currency}, the customer pays in "
                                  f"{currency}; a customer's ratecards must be in its currency")

    def _check_owners(self, kind: str, model, owner_kind: str, owner_model, pairs: list[tuple[Entry, Entry]],
                      errors: list[str]) -> None:
        if not pairs:
            return
        owners = dict(self.session.execute(select(model.name, owner_model.name).join(owner_model)
                                           .where(model.name.in_([item["name"] for _, item in pairs]))).all())
        for parent, item in pairs:
            owner = owners.get(item["name"])
            if owner is not None and owner != parent["name"]:
                errors.append(f"{item.path}.name: {kind} {item['name']!r} belongs to {owner_kind} {owner!r}")

    def _check_ip_ranges(self, endpoints: list[tuple[Entry, Entry]], errors: list[str]) -> None:
        """An IP range belongs to one customer (migration 0090): the file's IP endpoints as
        they will be after the load, against each other and against the stored ones the
        file does not name. Within one customer ranges may nest (longest match wins)."""
        names = [e["name"] for _, e in endpoints if "name" in e]
        stored = {name: (auth, ip) for name, auth, ip in self.session.execute(
            select(Endpoint.name, Endpoint.auth, Endpoint.ip).where(Endpoint.name.in_(names)))}
        ranges = []
        for customer, e in endpoints:
            if "name" not in e or "ip" in e.invalid:
                continue
            old_auth, old_ip = stored.get(e["name"], (None, None))
            auth = e["auth"] if "auth" in e else old_auth
            ip = e["ip"] if "ip" in e else old_ip
            if auth == "ip" and ip:
                ranges.append(ipranges.Range(e.path, e["name"], customer["name"], str(ip)))
        reported = set()

        def report(where: ipranges.Range, what: str) -> None:
            if where.key not in reported:
                reported.add(where.key)
                errors.append(f"{where.key}.ip: {what}")

        for later, earlier in ipranges.conflicts_among(ranges):
            if later.customer == earlier.customer:
                report(later, f"the same range as {earlier.key} ({earlier.name})")
            else:
                report(later, f"overlaps {earlier.ip} of customer {earlier.customer}")
        for where, conflict in ipranges.conflicts_with_stored(ranges, names):
            report(where, conflict.message().replace("of this customer", f"of customer {conflict.customer}"))

    def _check_sip_usernames(self, endpoints: list[tuple[Entry, Entry]], errors: list[str]) -> None:
        wanted = {e["username"]: e for _, e in endpoints if e.get("username")}
        if not wanted:
            return
        file_usernames = {e["name"]: e.get("username", ...) for _, e in endpoints}
        rows = self.session.execute(select(Endpoint.username, Endpoint.name).where(Endpoint.username.in_(sorted(wanted)))).all()
        for username, holder in rows:
            endpoint = wanted[username]
            if holder == endpoint["name"]:
                continue
            if holder in file_usernames and file_usernames[holder] not in (..., username):
                continue  # the file gives the holder another username
            errors.append(f"{endpoint.path}.username: {username!r} is already used by endpoint {holder!r}")

    # ---------------------------------------------------------------- writing
    def run(self) -> Summary:
        self.check()
        c = self.config
        settings = Settings.get()
        self.currency = c.currency or settings.currency
        self.apply_settings(settings)
        for entry in c.weights:
            self.apply_weight(entry)
        for entry in c.permissions:
            self.apply_permission(entry)
        self.apply_destinations()
        for entry in c.ratecards:
            self.apply_ratecard(entry)
        for entry in c.providers:
            self.apply_provider(entry)
        for entry in c.customers:
            self.apply_customer(entry)
        for entry in c.exchange_rates:
            self.apply_exchange_rate(entry)
        # the ratecard-currency guard (0111) is checked at commit; check() has already
        # compared the file's currencies, this names the entry if the database disagrees
        guards = ("billing.tg_customer_ratecards__currency, billing.tg_customers__ratecard_currency, "
                  "billing.tg_ratecards__customer_currency")
        with self.at("customers"):
            self.session.execute(text(f"SET CONSTRAINTS {guards} IMMEDIATE"))   # runs the pending checks
            self.session.execute(text(f"SET CONSTRAINTS {guards} DEFERRED"))
        audit.record("load", "provisioning", actor=self.actor, summary=self.summary.as_dict())
        self.session.flush()
        return self.summary

    def apply_settings(self, settings: Settings) -> None:
        values = dict(self.config.settings.values) if self.config.settings else {}
        if self.config.currency:
            values["currency"] = self.config.currency
        if not values:
            return
        with self.at("settings"):
            if _assign(settings, values):
                settings.updated_at = func.now()
                self.summary.add("settings", "updated")
            else:
                self.summary.add("settings", "unchanged")

    def upsert_named(self, model, entry: Entry, create_defaults: dict, values: dict | None = None,
                     owner: dict | None = None):
        """Create or update one entity matched by name: (entity flushed with its id,
        'created' | 'updated' | 'unchanged')."""
        values = _columns(entry) if values is None else values
        with self.at(entry.path):
            obj = self.session.scalar(select(model).where(model.name == values["name"]))
            if obj is None:
                obj = model(**{**create_defaults, **(owner or {}), **values})
                self.session.add(obj)
                action = "created"
            else:
                action = "updated" if _assign(obj, values) else "unchanged"
        return obj, action

    def record(self, kind: str, action: str, lists_changed: bool = False) -> None:
        if action == "unchanged" and lists_changed:
            action = "updated"
        self.summary.add(kind, action)

    def apply_weight(self, entry: Entry) -> None:
        weight, action = self.upsert_named(Weight, entry, {})
        self.ids["weight"][weight.name] = weight.id
        self.record("weights", action)

    def apply_permission(self, entry: Entry) -> None:
        permission, action = self.upsert_named(Permission, entry, {}, values={"name": entry["name"]})
        self.ids["permission"][permission.name] = permission.id
        changed = False
        if "weights" in entry:
            wanted = {self.ids["weight"][name] for _, name in entry["weights"]}
            with self.at(f"{entry.path}.weights"):
                current = set(self.session.scalars(select(PermissionWeight.weight_id)
                                                   .where(PermissionWeight.permission_id == permission.id)))
                if current != wanted:
                    changed = True
                    self.session.execute(delete(PermissionWeight).where(PermissionWeight.permission_id == permission.id))
                    if wanted:
                        self.session.execute(insert(PermissionWeight), [
                            {"permission_id": permission.id, "weight_id": w} for w in sorted(wanted)])
                    self.session.expire(permission, ["weights"])
        self.record("permissions", action, changed)

    def apply_ratecard(self, entry: Entry) -> None:
        card, action = self.upsert_named(Ratecard, entry, {"currency": self.currency})
        self.ids["ratecard"][card.name] = card.id
        self.record("ratecards", action)
        self.apply_rates("sell rates", "rates", card.id, entry)

    def apply_destinations(self) -> None:
        """One set-based upsert: catalogues run to thousands of prefixes."""
        entries = self.config.destinations
        if not entries:
            return
        params = {"prefix": [e["prefix"] for e in entries], "name": [e["name"] for e in entries],
                  "weight_id": [self.ids["weight"][e["weight"]] for e in entries]}
        with self.at("destinations"):
            written = [row[0] for row in self.session.execute(text(DESTINATIONS_SQL), params)]
        created = sum(1 for inserted in written if inserted)
        self.summary.add("destinations", "created", created)
        self.summary.add("destinations", "updated", len(written) - created)
        self.summary.add("destinations", "unchanged", len(entries) - len(written))

    def apply_rates(self, kind: str, table: str, owner_id: int, entry: Entry) -> None:
        rate_list = entry.get("rates")
        if rate_list is None:
            return
        rows = rate_list.rows
        params = {
            "owner_id": owner_id,
            "prefix": [r["prefix"] for r in rows],
            "rate": [r["rate"] for r in rows],
            "connect_fee": [r["connect_fee"] for r in rows],
            "min_duration": [r["min_duration"] for r in rows],
            "first": [r["increment"][0] for r in rows],
            "next": [r["increment"][1] for r in rows],
            "valid_from": [fields.moment_text(r["valid_from"]) for r in rows],
            "valid_to": [fields.moment_text(r["valid_to"]) for r in rows],
            "blocked": [r["blocked"] for r in rows],
        }
        delete_sql, upsert_sql = RATE_SQL[table]
        with self.at(rate_list.path):
            deleted = self.session.execute(text(delete_sql), params).rowcount
            written = [row[0] for row in self.session.execute(text(upsert_sql), params)]
        created = sum(1 for inserted in written if inserted)
        self.summary.add(kind, "created", created)
        self.summary.add(kind, "updated", len(written) - created)
        self.summary.add(kind, "unchanged", len(rows) - len(written))
        self.summary.add(kind, "deleted", deleted)

    def apply_provider(self, entry: Entry) -> None:
        provider, action = self.upsert_named(Provider, entry, {"currency": self.currency})
        self.ids["provider"][provider.name] = provider.id
        self.record("providers", action)
        for gateway in entry.get("gateways", []):
            _, action = self.upsert_named(Gateway, gateway, {}, owner={"provider_id": provider.id})
            self.record("gateways", action)
        self.apply_rates("provider rates", "provider_rates", provider.id, entry)

    def apply_customer(self, entry: Entry) -> None:
        values = _columns(entry, renames={"billing": "billing_type"}, skip=("balance",))
        customer, action = self.upsert_named(Customer, entry, {"currency": self.currency}, values=values)
        if action == "created" and entry.get("balance"):
            with self.at(f"{entry.path}.balance"):
                try:
                    post_entry(customer, "initial", entry["balance"], note="opening balance (provisioning)",
                               actor=self.actor)
                except LedgerError as exc:
                    raise ProvisioningError(f"{entry.path}.balance: {exc}") from exc
        changed = False
        if "ratecards" in entry:
            changed |= self.apply_customer_ratecards(customer, entry)
        if "routing_rules" in entry:
            changed |= self.apply_routing_rules(customer, entry)
        self.record("customers", action, changed)
        for endpoint in entry.get("endpoints", []):
            values = _columns(endpoint, renames={"permission": "permission_id"})
            values["permission_id"] = self.ids["permission"][endpoint["permission"]]
            _, action = self.upsert_named(Endpoint, endpoint, {}, values=values, owner={"customer_id": customer.id})
            self.record("endpoints", action)
        for user in entry.get("users", []):
            self.apply_user(customer, user)

    def apply_exchange_rate(self, entry: Entry) -> None:
        """Declarative: the row of (from, to, valid_from) gets the file's rate and valid_to;
        other rows of the pair are left as they are (the latest valid_from decides)."""
        with self.at(entry.path):
            written = self.session.execute(text(EXCHANGE_RATES_SQL), {
                "from_currency": entry["from"], "to_currency": entry["to"], "rate": entry["rate"],
                "valid_from": fields.moment_text(entry["valid_from"]),
                "valid_to": fields.moment_text(entry.get("valid_to")), "actor": self.actor}).first()
        self.summary.add("exchange rates", "unchanged" if written is None else "created" if written[0] else "updated")

    def apply_customer_ratecards(self, customer: Customer, entry: Entry) -> bool:
        wanted = sorted((link["priority"], self.ids["ratecard"][link["name"]]) for link in entry["ratecards"])
        with self.at(f"{entry.path}.ratecards"):
            current = sorted(self.session.execute(select(CustomerRatecard.priority, CustomerRatecard.ratecard_id)
                                                  .where(CustomerRatecard.customer_id == customer.id)).all())
            if [tuple(r) for r in current] == wanted:
                return False
            self.session.execute(delete(CustomerRatecard).where(CustomerRatecard.customer_id == customer.id))
            if wanted:
                self.session.execute(insert(CustomerRatecard), [
                    {"customer_id": customer.id, "ratecard_id": card_id, "priority": priority} for priority, card_id in wanted])
            self.session.expire(customer, ["ratecard_links"])
        return True

    def apply_routing_rules(self, customer: Customer, entry: Entry) -> bool:
        wanted = {rule["prefix"]: sorted(self.ids["provider"][name] for _, name in rule["providers"])
                  for rule in entry["routing_rules"]}
        with self.at(f"{entry.path}.routing_rules"):
            current: dict[str, list[int]] = {}
            rows = self.session.execute(select(RoutingRule.prefix, RoutingRuleProvider.provider_id)
                                        .outerjoin(RoutingRuleProvider, RoutingRuleProvider.routing_rule_id == RoutingRule.id)
                                        .where(RoutingRule.customer_id == customer.id)).all()
            for prefix, provider_id in rows:
                current.setdefault(prefix, [])
                if provider_id is not None:
                    current[prefix].append(provider_id)
            if {k: sorted(v) for k, v in current.items()} == wanted:
                return False
            self.session.execute(delete(RoutingRule).where(RoutingRule.customer_id == customer.id))
            for prefix, provider_ids in sorted(wanted.items()):
                rule_id = self.session.execute(insert(RoutingRule).values(customer_id=customer.id, prefix=prefix)
                                               .returning(RoutingRule.id)).scalar_one()
                self.session.execute(insert(RoutingRuleProvider), [
                    {"routing_rule_id": rule_id, "provider_id": pid} for pid in provider_ids])
            self.session.expire(customer, ["routing_rules"])
        return True

    def apply_user(self, customer: Customer, entry: Entry) -> None:
        with self.at(entry.path):
            user = self.session.scalar(select(User).where(User.email == entry["email"]))
            if user is None:
                password_hash = entry.get("password_hash") or hash_password(entry["password"])
                self.session.add(User(email=entry["email"], password_hash=password_hash, role="customer",
                                      customer_id=customer.id, active=entry.get("active", True)))
                self.summary.add("users", "created")
                return
            values = {}
            if "active" in entry:
                values["active"] = entry["active"]
            if "password_hash" in entry:
                values["password_hash"] = entry["password_hash"]
            elif "password" in entry and not verify_password(user.password_hash, entry["password"]):
                # Rehash only when the password really changed, so loading the same file
                # twice (or a dump) leaves the stored hash alone.
                values["password_hash"] = hash_password(entry["password"])
            self.summary.add("users", "updated" if _assign(user, values) else "unchanged")


def load_document(document, base_dir: Path | str | None = None, *, actor: str = "provisioning",
                  commit: bool = True) -> Summary:
    """Validate and apply a parsed document in the current transaction; commit it when
    `commit`, otherwise leave it open for the caller (who may add more or roll back).
    Raises ProvisioningError when anything is wrong, with the load's work undone."""
    config = validate(document, Path(base_dir) if base_dir is not None else None)
    session = db.session
    # A savepoint: a failed load undoes its own work only, never the caller's.
    load = session.begin_nested()
    try:
        summary = Applier(config, actor).run()
    except BaseException:
        load.rollback()
        raise
    load.commit()
    if commit:
        session.commit()
    return summary


def load_text(content: str, source: str = "<input>", base_dir: Path | str | None = None, **kwargs) -> Summary:
    try:
        document = parse(content, source)
    except YamlSyntaxError as exc:
        raise ProvisioningError(str(exc)) from None
    return load_document(document, base_dir, **kwargs)


def load_file(path: Path | str, **kwargs) -> Summary:
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_CHARS * 4:   # UTF-8: at most 4 bytes a character
            raise ProvisioningError(f"{path}: the file is {path.stat().st_size:,} bytes; far more than the "
                                    f"{MAX_CHARS:,} characters read")
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"{path}: cannot read the file: {exc}") from None
    return load_text(content, source=str(path), base_dir=path.parent, **kwargs)
