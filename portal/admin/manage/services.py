"""Business rules of the back office. Views call these and turn `AdminError` into a flash.

Every change is written to the audit log in the same transaction as the change itself,
and every refusal of the database (unique name taken, row still in use) comes back as an
`AdminError` whose message says what was wrong and what to do.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ... import audit, ipranges
from ...extensions import db
from ...endpoints.services import suggest_sip_password
from ...ledger.services import LedgerError, post_entry, post_manual
from ...models import (Customer, CustomerRatecard, Endpoint, LedgerEntry, Permission, Provider,
                      RoutingRule, Settings, User, Weight)
from ...security import hash_password


class AdminError(Exception):
    """A change the back office (or the API) refuses; the message is shown as is.
    `field` names the input it is about when known (the API reports it; the pages
    flash it)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
        self.constraint: str | None = None   # the database constraint that refused, when one did


class FieldError(AdminError):
    """A refusal about one field of the form: the page shows it beside that field."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field)


# Constraint name -> what the operator should read. Names follow the schema's convention.
CONSTRAINT_MESSAGES = {
    "uq_customers_name": "A customer with this name already exists.",
    "uq_endpoints_name": "An endpoint with this name already exists (names are unique across customers).",
    "uq_endpoints_username": "This SIP user name is already taken by another endpoint.",
    "ex_endpoints_ip_one_customer": "This IP range overlaps an IP endpoint of another customer: "
                                    "an IP range belongs to one customer.",
    "uq_endpoints_ip": "Another endpoint already has this very IP range.",
    "uq_users_email": "A portal user with this e-mail address already exists.",
    "uq_weights_name": "A weight with this name already exists.",
    "uq_permissions_name": "A permission with this name already exists.",
    "uq_destinations_prefix": "A destination with this prefix already exists: edit that one instead.",
    "uq_ratecards_name": "A ratecard with this name already exists.",
    "uq_providers_name": "A provider with this name already exists.",
    "uq_gateways_name": "A gateway with this name already exists (gateway names are unique across providers).",
    "uq_rates_ratecard_id_prefix_valid_from": "This ratecard already has a rate for this prefix starting at the same date.",
    "uq_provider_rates_provider_id_prefix_valid_from": "This provider already has a rate for this prefix starting at the same date.",
    "uq_routing_rules_customer_id_prefix": "This customer already has a routing rule for this prefix: edit it instead.",
    "uq_customer_ratecards_customer_id_priority": "Two ratecards cannot share one priority.",
    "pk_customer_ratecards": "A ratecard can be assigned to a customer only once.",
    "fk_customer_ratecards_ratecard_id_ratecards":
        "This ratecard is still assigned to customers: remove it from their ratecards first.",
    "fk_destinations_weight_id_weights": "This weight is still used by destinations: move them to another weight first.",
    "fk_permission_weights_weight_id_weights":
        "This weight is still part of a permission: remove it from the permissions first.",
    "fk_endpoints_permission_id_permissions":
        "This permission is still used by endpoints: give them another permission first.",
    "fk_ledger_customer_id_customers":
        "This customer has ledger entries, which are kept for accounting: disable the customer instead.",
    "ck_customers_prepaid_no_credit": "A prepaid customer cannot have a credit limit: make it postpaid or set the limit to 0.",
    "ck_gateways_register_needs_credentials": "Registration needs a user name and a password.",
    "ck_rates_validity": "'Valid to' must be after 'valid from'.",
    "ck_provider_rates_validity": "'Valid to' must be after 'valid from'.",
    "ck_customer_ratecards_currency": "A customer's ratecards must be in the customer's currency.",
}


# Constraint name -> the input it is about (the API names it in its error).
CONSTRAINT_FIELDS = {
    "uq_customers_name": "name", "uq_endpoints_name": "name", "uq_endpoints_username": "username",
    "ex_endpoints_ip_one_customer": "ip", "uq_endpoints_ip": "ip", "uq_users_email": "email",
    "uq_weights_name": "name", "uq_permissions_name": "name", "uq_destinations_prefix": "prefix",
    "uq_ratecards_name": "name", "uq_providers_name": "name", "uq_gateways_name": "name",
    "uq_rates_ratecard_id_prefix_valid_from": "prefix", "uq_provider_rates_provider_id_prefix_valid_from": "prefix",
    "uq_routing_rules_customer_id_prefix": "prefix", "uq_customer_ratecards_customer_id_priority": "ratecard_ids",
    "pk_customer_ratecards": "ratecard_ids", "ck_customers_prepaid_no_credit": "credit_limit",
    "ck_gateways_register_needs_credentials": "register", "ck_rates_validity": "valid_to",
    "ck_provider_rates_validity": "valid_to",
}


def refusal(exc: IntegrityError) -> AdminError:
    """The AdminError of a refusal of the database, with the field when one is known."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    error = AdminError(explain(exc), CONSTRAINT_FIELDS.get(name))
    error.constraint = name
    return error


def explain(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name in CONSTRAINT_MESSAGES:
        return CONSTRAINT_MESSAGES[name]
    detail = getattr(diag, "message_primary", None) or str(exc.orig).splitlines()[0]
    return f"The database refused the change: {detail}"


def commit() -> None:
    """Commit the change and its audit row, or roll both back and say why."""
    try:
        db.session.flush()
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise refusal(exc) from None


def _flush() -> None:
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise refusal(exc) from None


# ------------------------------------------------------------------ generic changes

SECRET_FIELDS = {"password", "password_hash"}


def snapshot(obj, fields) -> dict:
    return {f: getattr(obj, f) for f in fields}


def changed(before: dict, after: dict) -> dict:
    """{field: [old, new]} for the fields that changed; secrets show only that they changed."""
    diff = {}
    for key, new in after.items():
        old = before.get(key)
        if old != new:
            diff[key] = "changed" if key in SECRET_FIELDS else [old, new]
    return diff


def _apply(obj, data: dict) -> tuple[bool, dict]:
    """Write `data` into `obj` (adding it when new) and flush. Returns (created, audit details)."""
    creating = obj.id is None
    before = {} if creating else snapshot(obj, data)
    for key, value in data.items():
        setattr(obj, key, value)
    if creating:
        db.session.add(obj)
    _flush()
    return creating, (_audit_values(data) if creating else changed(before, data))


def save(obj, data: dict, entity: str):
    """Create (obj not yet in the session) or update `obj` with `data`; audited."""
    creating, details = _apply(obj, data)
    audit.record("create" if creating else "update", entity, obj.id, **details)
    commit()
    return obj


def _audit_values(data: dict) -> dict:
    return {k: ("set" if k in SECRET_FIELDS else v) for k, v in data.items()}


def delete(model, obj, entity: str, label: str) -> None:
    """Delete one row with SQL (so the database's own ON DELETE rules apply, not the ORM's)."""
    ident = obj.id
    db.session.expunge(obj)
    try:
        db.session.execute(sql_delete(model).where(model.id == ident))
    except IntegrityError as exc:
        db.session.rollback()
        error = refusal(exc)
        error.args = (f"{label} was not deleted. {error}",)
        raise error from None
    audit.record("delete", entity, ident, name=label)
    commit()


def set_enabled(obj, entity: str, enabled: bool, attribute: str = "enabled") -> None:
    setattr(obj, attribute, enabled)
    audit.record("enable" if enabled else "disable", entity, obj.id)
    commit()


# ------------------------------------------------------------------ customers

def save_customer(customer: Customer, data: dict, ratecard_ids: list[int],
                  opening_balance: Decimal | None = None) -> Customer:
    """Create or update a customer with its ratecards (priority = position in the list)."""
    before_cards = [link.ratecard_id for link in customer.ratecard_links] if customer.id is not None else []
    creating, details = _apply(customer, data)
    if ratecard_ids != before_cards:
        db.session.execute(sql_delete(CustomerRatecard).where(CustomerRatecard.customer_id == customer.id))
        db.session.expire(customer, ["ratecard_links"])
        for priority, ratecard_id in enumerate(ratecard_ids, start=1):
            db.session.add(CustomerRatecard(customer_id=customer.id, ratecard_id=ratecard_id, priority=priority))
        _flush()
        details["ratecards"] = ratecard_ids
    if creating and opening_balance:
        try:
            post_entry(customer, "initial", opening_balance, note="opening balance", actor=audit_actor())
        except LedgerError as exc:
            db.session.rollback()
            raise AdminError(str(exc)) from None
        details["opening_balance"] = opening_balance
    audit.record("create" if creating else "update", "customer", customer.id, **details)
    commit()
    return customer


def audit_actor() -> str:
    return audit.current_actor()


def post_ledger(customer: Customer, kind: str, amount: Decimal, reference: str | None, note: str | None) -> LedgerEntry:
    """A top-up, payment, credit note or adjustment posted by an admin."""
    try:
        entry = post_manual(customer, kind, amount, reference=reference, note=note, actor=audit_actor())
    except LedgerError as exc:
        db.session.rollback()
        raise AdminError(str(exc), exc.field) from None
    commit()
    return entry


# ------------------------------------------------------------------ endpoints

def save_endpoint(endpoint: Endpoint, data: dict, new_password: str | None) -> str | None:
    """Create or update an endpoint. Returns the SIP password when one was generated."""
    generated = None
    if data["auth"] == "ip":
        data.update(username=None, password=None)
        in_the_way = ipranges.conflicts(data["ip"], data["customer_id"], endpoint.id)
        if in_the_way:
            raise FieldError("ip", ip_conflict_message(in_the_way[0]))
    else:
        data["ip"] = None
        if new_password:
            data["password"] = new_password
        elif not endpoint.password:
            generated = data["password"] = suggest_sip_password()
    save(endpoint, data, "endpoint")
    return generated


def ip_conflict_message(conflict: ipranges.Conflict) -> str:
    if conflict.same_customer:
        return (f"Endpoint {conflict.endpoint} of this customer already has {conflict.ip}: one range, one endpoint. "
                "Nested ranges are fine (the longest match takes the call).")
    return (f"Overlaps {conflict.ip} of customer {conflict.customer} (endpoint {conflict.endpoint}): "
            "an IP range belongs to one customer.")


def rotate_sip_password(endpoint: Endpoint) -> str:
    if endpoint.auth != "sip":
        raise AdminError("Only SIP endpoints have a password.")
    password = suggest_sip_password()
    endpoint.password = password
    audit.record("rotate_password", "endpoint", endpoint.id)
    commit()
    return password


# ------------------------------------------------------------------ portal users

def create_user(customer_id: int, email: str, password: str) -> User:
    user = User(email=email.strip().lower(), password_hash=hash_password(password), role="customer",
                customer_id=customer_id, active=True)
    db.session.add(user)
    _flush()
    audit.record("create", "user", user.id, email=user.email, customer_id=customer_id)
    commit()
    return user


def update_user(user: User, email: str, active: bool) -> User:
    before = snapshot(user, ["email", "active"])
    user.email, user.active = email.strip().lower(), active
    _flush()
    audit.record("update", "user", user.id, **changed(before, {"email": user.email, "active": active}))
    commit()
    return user


def reset_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    audit.record("reset_password", "user", user.id, email=user.email)
    commit()


# ------------------------------------------------------------------ permissions, routing rules

def save_permission(permission: Permission, name: str, weight_ids: list[int]) -> Permission:
    weights = list(db.session.scalars(select(Weight).where(Weight.id.in_(weight_ids)))) if weight_ids else []
    before = {"name": permission.name, "weights": sorted(w.name for w in permission.weights)} if permission.id else {}
    permission.name = name
    permission.weights = weights
    after = {"name": name, "weights": sorted(w.name for w in weights)}
    return _save_with_links(permission, "permission", before, after)


def save_routing_rule(rule: RoutingRule, customer_id: int, prefix: str, provider_ids: list[int]) -> RoutingRule:
    providers = list(db.session.scalars(select(Provider).where(Provider.id.in_(provider_ids))))
    before = {"customer_id": rule.customer_id, "prefix": rule.prefix,
              "providers": sorted(p.name for p in rule.providers)} if rule.id else {}
    rule.customer_id, rule.prefix, rule.providers = customer_id, prefix, providers
    after = {"customer_id": customer_id, "prefix": prefix, "providers": sorted(p.name for p in providers)}
    return _save_with_links(rule, "routing_rule", before, after)


def _save_with_links(obj, entity: str, before: dict, after: dict):
    creating = obj.id is None
    if creating:
        db.session.add(obj)
    _flush()
    audit.record("create" if creating else "update", entity, obj.id, **(after if creating else changed(before, after)))
    commit()
    return obj


# ------------------------------------------------------------------ settings

def update_settings(data: dict) -> Settings:
    settings = Settings.get()
    before = snapshot(settings, data)
    for key, value in data.items():
        setattr(settings, key, value)
    settings.updated_at = func.now()
    audit.record("update", "settings", None, **changed(before, data))
    commit()
    return settings
