"""ORM models of the `billing` schema.

The SQL migrations under sql/ are the source of truth; these models mirror them
(tests/test_schema.py checks that every mapped column exists with the same type family
and nullability). Money columns are Numeric and come back as Decimal.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Optional

from flask_login import UserMixin
from sqlalchemy import event, inspect
from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, LargeBinary, Numeric, Text
from sqlalchemy.dialects.postgresql import ARRAY, CIDR, INET, JSONB, TIMESTAMP
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .extensions import db

Money = Numeric(20, 6)
Rate = Numeric(14, 6)
TZ = TIMESTAMP(timezone=True)


def _id() -> Mapped[int]:
    return mapped_column(BigInteger, primary_key=True, autoincrement=True)


class Settings(db.Model):
    __tablename__ = "settings"
    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=True)
    currency: Mapped[str] = mapped_column(Text)
    max_call_seconds: Mapped[int] = mapped_column(Integer)
    sip_domain: Mapped[str] = mapped_column(Text)
    hold_grace_seconds: Mapped[int] = mapped_column(Integer)
    default_tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    low_balance_default: Mapped[Optional[Decimal]] = mapped_column(Money)
    company_name: Mapped[str] = mapped_column(Text)
    company_address: Mapped[str] = mapped_column(Text)
    company_vat_id: Mapped[str] = mapped_column(Text)
    company_email: Mapped[str] = mapped_column(Text)
    invoice_footer: Mapped[str] = mapped_column(Text)
    company_logo: Mapped[str] = mapped_column(Text, server_default="img/logo.svg")
    staff_two_factor_required: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # 0091: the operator's legal block on invoices, payment terms, reminders.
    company_registration: Mapped[str] = mapped_column(Text, server_default="")
    company_bank_details: Mapped[str] = mapped_column(Text, server_default="")
    payment_terms_days: Mapped[int] = mapped_column(Integer, server_default="30")
    reminder_interval_days: Mapped[int] = mapped_column(Integer, server_default="14")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    # credit in quotas (CONTRACT 1b, migration 0026)
    quota_seconds: Mapped[Optional[int]] = mapped_column(Integer, server_default="300")
    reauth_margin_seconds: Mapped[int] = mapped_column(Integer, server_default="10")
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default="60")
    # webhooks (0151): the operator's HTTPS endpoint, its signing secret, the events sent
    webhook_url: Mapped[Optional[str]] = mapped_column(Text)
    webhook_secret: Mapped[Optional[str]] = mapped_column(Text)
    webhook_events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # CDR retention (0175): months of rated CDRs kept in the database; 0 = every month
    cdr_retention_months: Mapped[int] = mapped_column(Integer, server_default="24")

    @classmethod
    def get(cls) -> "Settings":
        return db.session.get(cls, True)


class Weight(db.Model):
    __tablename__ = "weights"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)


class PermissionWeight(db.Model):
    __tablename__ = "permission_weights"
    permission_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True)
    weight_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("weights.id", ondelete="RESTRICT"), primary_key=True)


class Permission(db.Model):
    __tablename__ = "permissions"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)
    weights: Mapped[list[Weight]] = relationship(secondary="billing.permission_weights", order_by="Weight.name")


class Destination(db.Model):
    __tablename__ = "destinations"
    id: Mapped[int] = _id()
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    weight_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("weights.id", ondelete="RESTRICT"))
    weight: Mapped[Weight] = relationship()


class Ratecard(db.Model):
    __tablename__ = "ratecards"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)
    currency: Mapped[str] = mapped_column(Text, default="EUR")


class _RateColumns:
    prefix: Mapped[str] = mapped_column(Text)
    rate: Mapped[Decimal] = mapped_column(Rate)
    connect_fee: Mapped[Decimal] = mapped_column(Rate, default=Decimal(0))
    min_duration: Mapped[int] = mapped_column(Integer, default=0)
    increment_first: Mapped[int] = mapped_column(Integer, default=60)
    increment_next: Mapped[int] = mapped_column(Integer, default=60)
    valid_from: Mapped[Optional[datetime]] = mapped_column(TZ)
    valid_to: Mapped[Optional[datetime]] = mapped_column(TZ)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def increment(self) -> str:
        return f"{self.increment_first}/{self.increment_next}"


class SellRate(_RateColumns, db.Model):
    __tablename__ = "rates"
    id: Mapped[int] = _id()
    ratecard_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ratecards.id", ondelete="CASCADE"))
    ratecard: Mapped[Ratecard] = relationship()



class Provider(db.Model):
    __tablename__ = "providers"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    currency: Mapped[str] = mapped_column(Text, default="EUR")
    gateways: Mapped[list["Gateway"]] = relationship(back_populates="provider", order_by="Gateway.priority, Gateway.name")


class Gateway(db.Model):
    __tablename__ = "gateways"
    id: Mapped[int] = _id()
    provider_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("providers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text, unique=True)
    host: Mapped[str] = mapped_column(Text)
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(Text, default="udp")
    max_channels: Mapped[Optional[int]] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    strip_digits: Mapped[int] = mapped_column(Integer, default=0)
    add_prefix: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    codecs: Mapped[Optional[str]] = mapped_column(Text)
    username: Mapped[Optional[str]] = mapped_column(Text)
    password: Mapped[Optional[str]] = mapped_column(Text)
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    bypass_media: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_early_media: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[Provider] = relationship(back_populates="gateways")


class ProviderRate(_RateColumns, db.Model):
    __tablename__ = "provider_rates"
    id: Mapped[int] = _id()
    provider_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("providers.id", ondelete="CASCADE"))
    provider: Mapped[Provider] = relationship()


class Customer(db.Model):
    __tablename__ = "customers"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    billing_type: Mapped[str] = mapped_column(Text, default="prepaid")
    # A cache of sum(ledger.amount), maintained by the database; never assign it.
    balance: Mapped[Decimal] = mapped_column(Money, server_default="0")
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    max_calls: Mapped[Optional[int]] = mapped_column(Integer)
    allow_negative_margin: Mapped[bool] = mapped_column(Boolean, default=False)
    lcr_strategy: Mapped[str] = mapped_column(Text, default="cost")
    low_balance_alert: Mapped[Optional[Decimal]] = mapped_column(Money)
    email: Mapped[Optional[str]] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text, default="EUR")
    tax_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric(6, 4))
    daily_balance_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # 0091: legal data for invoices; `name` stays the identifier.
    display_name: Mapped[Optional[str]] = mapped_column(Text)
    legal_name: Mapped[Optional[str]] = mapped_column(Text)
    address: Mapped[Optional[str]] = mapped_column(Text)
    vat_id: Mapped[Optional[str]] = mapped_column(Text)
    payment_terms_days: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    endpoints: Mapped[list["Endpoint"]] = relationship(back_populates="customer", order_by="Endpoint.name")
    ratecard_links: Mapped[list["CustomerRatecard"]] = relationship(order_by="CustomerRatecard.priority", cascade="all, delete-orphan")
    routing_rules: Mapped[list["RoutingRule"]] = relationship(order_by="RoutingRule.prefix", cascade="all, delete-orphan")

    __mapper_args__ = {"eager_defaults": True}

    @property
    def label(self) -> str:
        """The name people read: the display name, else the identifier."""
        return self.display_name or self.name


class CustomerRatecard(db.Model):
    __tablename__ = "customer_ratecards"
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    ratecard_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ratecards.id", ondelete="RESTRICT"), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer)
    ratecard: Mapped[Ratecard] = relationship()


class RoutingRule(db.Model):
    __tablename__ = "routing_rules"
    id: Mapped[int] = _id()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(Text)
    providers: Mapped[list[Provider]] = relationship(secondary="billing.routing_rule_providers", order_by="Provider.name")


class RoutingRuleProvider(db.Model):
    __tablename__ = "routing_rule_providers"
    routing_rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("routing_rules.id", ondelete="CASCADE"), primary_key=True)
    provider_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)


class Endpoint(db.Model):
    __tablename__ = "endpoints"
    id: Mapped[int] = _id()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text, unique=True)
    auth: Mapped[str] = mapped_column(Text)
    ip: Mapped[Optional[str]] = mapped_column(CIDR)
    username: Mapped[Optional[str]] = mapped_column(Text, unique=True)
    password: Mapped[Optional[str]] = mapped_column(Text)
    permission_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("permissions.id", ondelete="RESTRICT"))
    max_calls: Mapped[Optional[int]] = mapped_column(Integer)
    strip_digits: Mapped[int] = mapped_column(Integer, default=0)
    add_prefix: Mapped[str] = mapped_column(Text, default="")
    spend_limit_month: Mapped[Optional[Decimal]] = mapped_column(Money)
    context: Mapped[str] = mapped_column(Text, default="default")
    codecs: Mapped[Optional[str]] = mapped_column(Text)
    bypass_media: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_early_media: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    customer: Mapped[Customer] = relationship(back_populates="endpoints")
    permission: Mapped[Permission] = relationship()


class LedgerEntry(db.Model):
    __tablename__ = "ledger"
    id: Mapped[int] = _id()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Money)
    call_uuid: Mapped[Optional[str]] = mapped_column(Text)
    reference: Mapped[Optional[str]] = mapped_column(Text)
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())


class CallHold(db.Model):
    __tablename__ = "call_holds"
    call_uuid: Mapped[str] = mapped_column(Text, primary_key=True)
    # no foreign keys (migration 0013): holds are transient; delete triggers cascade
    customer_id: Mapped[int] = mapped_column(BigInteger)
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Money)
    sell_rate: Mapped[Decimal] = mapped_column(Rate)
    max_duration: Mapped[Optional[int]] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)
    # what the hold covers (CONTRACT 1b): seconds since the answer (NULL: all of
    # max_duration), priced with these terms
    granted_seconds: Mapped[Optional[int]] = mapped_column(Integer)
    connect_fee: Mapped[Decimal] = mapped_column(Money, server_default="0")
    min_duration: Mapped[int] = mapped_column(Integer, server_default="0")
    increment_first: Mapped[int] = mapped_column(Integer, server_default="1")
    increment_next: Mapped[int] = mapped_column(Integer, server_default="1")
    grants: Mapped[int] = mapped_column(Integer, server_default="1")
    granted_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())


class FsCdr(db.Model):
    __tablename__ = "fs_cdr"
    id: Mapped[int] = _id()
    uuid: Mapped[str] = mapped_column(Text, unique=True)
    caller_id_number: Mapped[Optional[str]] = mapped_column(Text)
    destination_number: Mapped[Optional[str]] = mapped_column(Text)
    start_stamp: Mapped[Optional[datetime]] = mapped_column(TZ)
    answer_stamp: Mapped[Optional[datetime]] = mapped_column(TZ)
    end_stamp: Mapped[Optional[datetime]] = mapped_column(TZ)
    duration: Mapped[Optional[int]] = mapped_column(Integer)
    billsec: Mapped[Optional[int]] = mapped_column(Integer)
    hangup_cause: Mapped[Optional[str]] = mapped_column(Text)
    sip_hangup_disposition: Mapped[Optional[str]] = mapped_column(Text)
    billing_customer_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    billing_endpoint_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    billing_destination: Mapped[Optional[str]] = mapped_column(Text)
    billing_sell_prefix: Mapped[Optional[str]] = mapped_column(Text)
    billing_sell_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    billing_route_seq: Mapped[Optional[int]] = mapped_column(Integer)
    billing_gateway: Mapped[Optional[str]] = mapped_column(Text)
    billing_provider_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    billing_cost_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    hangup_cause_q850: Mapped[Optional[int]] = mapped_column(Integer)
    billmsec: Mapped[Optional[int]] = mapped_column(BigInteger)
    start_epoch: Mapped[Optional[int]] = mapped_column(BigInteger)
    answer_epoch: Mapped[Optional[int]] = mapped_column(BigInteger)
    end_epoch: Mapped[Optional[int]] = mapped_column(BigInteger)
    network_addr: Mapped[Optional[str]] = mapped_column(Text)
    sip_user: Mapped[Optional[str]] = mapped_column(Text)
    last_bridge_proto_specific_hangup_cause: Mapped[Optional[str]] = mapped_column(Text)
    billing_reject_reason: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="new")
    unrated_reason: Mapped[Optional[str]] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    held_seconds: Mapped[Optional[int]] = mapped_column(Integer)   # the hold's grant when billed; NULL: none


class Cdr(db.Model):
    __tablename__ = "cdr"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    start_stamp: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    fs_cdr_id: Mapped[int] = mapped_column(BigInteger)
    uuid: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    endpoint_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    provider_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    gateway: Mapped[Optional[str]] = mapped_column(Text)
    caller_id: Mapped[Optional[str]] = mapped_column(Text)
    destination: Mapped[Optional[str]] = mapped_column(Text)
    sell_prefix: Mapped[Optional[str]] = mapped_column(Text)
    answer_stamp: Mapped[Optional[datetime]] = mapped_column(TZ)
    end_stamp: Mapped[Optional[datetime]] = mapped_column(TZ)
    duration: Mapped[int] = mapped_column(Integer)
    billsec: Mapped[int] = mapped_column(Integer)
    billed_seconds: Mapped[int] = mapped_column(Integer)
    cost_billed_seconds: Mapped[int] = mapped_column(Integer)
    sell_rate_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    sell_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    sell_amount: Mapped[Decimal] = mapped_column(Money)
    cost_rate_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    cost_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    cost_amount: Mapped[Decimal] = mapped_column(Money)
    margin: Mapped[Decimal] = mapped_column(Money)
    hangup_cause: Mapped[Optional[str]] = mapped_column(Text)
    route_seq: Mapped[Optional[int]] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    unrated_reason: Mapped[Optional[str]] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column(TZ)
    # a call never costs more than its hold (CONTRACT 1b): what the hold granted, the
    # seconds billed to nobody beyond it, and the flags for admin review
    held_seconds: Mapped[Optional[int]] = mapped_column(Integer)
    overrun_seconds: Mapped[int] = mapped_column(Integer, server_default="0")
    no_hold: Mapped[bool] = mapped_column(Boolean, server_default="false")
    absurd_duration: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Set when the provider's currency is not the customer's (0110): cost_amount is the
    # cost converted into the customer's currency, these say from what.
    cost_currency: Mapped[Optional[str]] = mapped_column(Text)
    cost_amount_original: Mapped[Optional[Decimal]] = mapped_column(Money)
    exchange_rate: Mapped[Optional[Decimal]] = mapped_column(Numeric)


class ExchangeRate(db.Model):
    """1 from_currency = rate to_currency, valid in [valid_from, valid_to) (0110)."""
    __tablename__ = "exchange_rates"
    id: Mapped[int] = _id()
    from_currency: Mapped[str] = mapped_column(Text)
    to_currency: Mapped[str] = mapped_column(Text)
    rate: Mapped[Decimal] = mapped_column(Numeric(24, 12))
    valid_from: Mapped[datetime] = mapped_column(TZ)
    valid_to: Mapped[Optional[datetime]] = mapped_column(TZ)
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())

    @property
    def pair(self) -> str:
        return f"{self.from_currency}→{self.to_currency}"

    @property
    def rate_text(self) -> str:
        """The exact rate without trailing zeros (0.0871, not 0.087100000000)."""
        return format(Decimal(self.rate).normalize(), "f")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id: Mapped[int] = _id()
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    last_login_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    # Incremented to revoke every session and remember-me cookie issued before (0100).
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    totp_secret: Mapped[Optional[str]] = mapped_column(Text)
    totp_enabled_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    totp_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)
    customer: Mapped[Optional[Customer]] = relationship()

    STAFF_ROLES = ("admin", "finance", "support")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_staff(self) -> bool:
        """Back-office users: admin, finance or support."""
        return self.role in self.STAFF_ROLES

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """What the session and the remember-me cookie store: the id and the session
        version, so that incrementing the version revokes every cookie issued before."""
        return f"{self.id}.{self.session_version}"


class AuthEvent(db.Model):
    """A sign-in attempt or another account event (0100): the login audit and the
    throttle's memory, shared by every portal process."""
    __tablename__ = "auth_events"
    id: Mapped[int] = _id()
    at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    kind: Mapped[str] = mapped_column(Text)
    email: Mapped[Optional[str]] = mapped_column(Text)
    user_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"))
    client_ip: Mapped[Optional[str]] = mapped_column(INET)
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[Optional[str]] = mapped_column(Text)
    user_agent: Mapped[Optional[str]] = mapped_column(Text)


class AccountToken(db.Model):
    """A single-use, expiring token sent by e-mail (0102); only its SHA-256 is stored."""
    __tablename__ = "account_tokens"
    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    email: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ)
    used_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    user: Mapped[User] = relationship()


class RecoveryCode(db.Model):
    """A one-time two-factor recovery code (0103); only its SHA-256 is stored."""
    __tablename__ = "recovery_codes"
    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    used_at: Mapped[Optional[datetime]] = mapped_column(TZ)


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    id: Mapped[int] = _id()
    at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[Optional[str]] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, default=dict)


class GatewayStats(db.Model):
    __tablename__ = "gateway_stats"
    gateway_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    calls: Mapped[Decimal] = mapped_column(Numeric)
    answered: Mapped[Decimal] = mapped_column(Numeric)
    billsec: Mapped[Decimal] = mapped_column(Numeric)
    asr: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    acd: Mapped[Optional[Decimal]] = mapped_column(Numeric)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class BalanceEvent(db.Model):
    __tablename__ = "balance_events"
    id: Mapped[int] = _id()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    balance: Mapped[Decimal] = mapped_column(Money)
    threshold: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    notified_at: Mapped[Optional[datetime]] = mapped_column(TZ)


class EndpointMonthSpend(db.Model):
    __tablename__ = "endpoint_month_spend"
    endpoint_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)


# ----------------------------------------------------------------- invoices, mail, jobs

Amount2 = Numeric(20, 2)


class InvoiceCounter(db.Model):
    __tablename__ = "invoice_counters"
    series: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class Invoice(db.Model):
    """An invoice (postpaid), statement (prepaid) or credit note; immutable once issued."""
    __tablename__ = "invoices"
    id: Mapped[int] = _id()
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="draft")
    series: Mapped[Optional[str]] = mapped_column(Text)
    year: Mapped[Optional[int]] = mapped_column(Integer)
    seq: Mapped[Optional[int]] = mapped_column(Integer)
    number: Mapped[Optional[str]] = mapped_column(Text, unique=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(Text)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    net_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    tax_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    gross_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    payments_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    credits_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    adjustments_total: Mapped[Decimal] = mapped_column(Amount2, default=Decimal(0))
    opening_balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    closing_balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    customer_name: Mapped[str] = mapped_column(Text)
    customer_email: Mapped[Optional[str]] = mapped_column(Text)
    seller: Mapped[dict] = mapped_column(JSONB, default=dict)
    corrects_invoice_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"))
    ledger_entry_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("ledger.id", ondelete="RESTRICT"))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    issued_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    issued_by: Mapped[Optional[str]] = mapped_column(Text)
    # 0091: the customer's legal data as built, due date and terms as issued, reverse charge.
    customer_snapshot: Mapped[dict] = mapped_column(JSONB, default=dict)
    payment_terms_days: Mapped[Optional[int]] = mapped_column(Integer)
    due_date: Mapped[Optional[date]] = mapped_column(Date)
    reverse_charge: Mapped[bool] = mapped_column(Boolean, default=False)
    tax_note: Mapped[Optional[str]] = mapped_column(Text)
    customer: Mapped[Customer] = relationship()
    lines: Mapped[list["InvoiceLine"]] = relationship(order_by="InvoiceLine.position", passive_deletes=True)
    corrects: Mapped[Optional["Invoice"]] = relationship(remote_side="Invoice.id")

    @property
    def is_issued(self) -> bool:
        return self.status == "issued"

    @property
    def period_last(self) -> date:
        """The last day of the period (period_end is exclusive)."""
        return self.period_end - timedelta(days=1)

    @property
    def title(self) -> str:
        return {"invoice": "Invoice", "statement": "Statement", "credit_note": "Credit note"}[self.kind]


class PaymentAllocation(db.Model):
    """Part of a payment (ledger entry) applied to an issued invoice (0091); immutable."""
    __tablename__ = "payment_allocations"
    id: Mapped[int] = _id()
    ledger_entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger.id", ondelete="RESTRICT"))
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"))
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    entry: Mapped[LedgerEntry] = relationship()
    invoice: Mapped["Invoice"] = relationship()


class InvoiceLine(db.Model):
    __tablename__ = "invoice_lines"
    id: Mapped[int] = _id()
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    prefix: Mapped[Optional[str]] = mapped_column(Text)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_exact: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    amount: Mapped[Decimal] = mapped_column(Amount2)


class InvoiceDocument(db.Model):
    __tablename__ = "invoice_documents"
    invoice_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), primary_key=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())


class MailMessage(db.Model):
    """One message of the outbox: pending until delivered, failed after max_attempts.
    An e-mail (channel 'email'), or a webhook delivery (channel 'webhook', 0151: to_addr
    is the URL, subject the event type, body the JSON sent)."""
    __tablename__ = "mail_outbox"
    id: Mapped[int] = _id()
    channel: Mapped[str] = mapped_column(Text, default="email", server_default="email")
    response_status: Mapped[Optional[int]] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    to_addr: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="SET NULL"))
    invoice_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"))
    dedupe_key: Mapped[Optional[str]] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    sent_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    customer: Mapped[Optional[Customer]] = relationship()
    invoice: Mapped[Optional[Invoice]] = relationship()


class ApiToken(db.Model):
    """A token of the REST API (0150): only its SHA-256 is stored. Scope `read` or
    `write` (every customer), or `customer` (one customer's data, read-only)."""
    __tablename__ = "api_tokens"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text)
    token_prefix: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    scope: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    revoked_by: Mapped[Optional[str]] = mapped_column(Text)
    customer: Mapped[Optional[Customer]] = relationship()


class JobRun(db.Model):
    __tablename__ = "job_runs"
    id: Mapped[int] = _id()
    job: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="running")
    result: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.clock_timestamp())
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZ)

    @property
    def seconds(self) -> Optional[float]:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RateImport(db.Model):
    """A rate deck upload and its import job (migration 0060)."""
    __tablename__ = "rate_imports"
    id: Mapped[int] = _id()
    target: Mapped[str] = mapped_column(Text)
    ratecard_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("ratecards.id", ondelete="CASCADE"))
    provider_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("providers.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str] = mapped_column(Text)
    options: Mapped[dict] = mapped_column(JSONB, default=dict)
    effective_from: Mapped[Optional[datetime]] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(Text, default="uploaded")
    phase: Mapped[Optional[str]] = mapped_column(Text)
    total_lines: Mapped[Optional[int]] = mapped_column(Integer)
    processed_lines: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSONB, default=list)
    summary: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    started_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    ratecard: Mapped[Optional[Ratecard]] = relationship()
    provider: Mapped[Optional[Provider]] = relationship()

    @property
    def owner_id(self) -> int:
        return self.ratecard_id if self.target == "ratecard" else self.provider_id

    @property
    def owner_name(self) -> str:
        owner = self.ratecard if self.target == "ratecard" else self.provider
        return owner.name if owner else "?"


class RerateJob(db.Model):
    """A re-rate of a period started from the back office: preview, then apply (0112)."""
    __tablename__ = "rerate_jobs"
    id: Mapped[int] = _id()
    period_from: Mapped[datetime] = mapped_column(TZ)
    period_to: Mapped[datetime] = mapped_column(TZ)
    customer_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"))
    provider_id: Mapped[Optional[int]] = mapped_column(BigInteger, ForeignKey("providers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(Text, default="previewing")
    phase: Mapped[Optional[str]] = mapped_column(Text)
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=1)
    calls: Mapped[Optional[int]] = mapped_column(BigInteger)
    preview: Mapped[list] = mapped_column(JSONB, default=list)
    previewed_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    result: Mapped[dict] = mapped_column(JSONB, default=dict)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    started_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    customer: Mapped[Optional[Customer]] = relationship()
    provider: Mapped[Optional[Provider]] = relationship()


class CdrArchive(db.Model):
    """A month of rated CDRs archived to a file at least once (0175, portal/retention)."""
    __tablename__ = "cdr_archives"
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    partition_name: Mapped[str] = mapped_column(Text)
    range_from: Mapped[datetime] = mapped_column(TZ)
    range_to: Mapped[datetime] = mapped_column(TZ)
    state: Mapped[str] = mapped_column(Text)          # 'archived' | 'restored'
    file_name: Mapped[str] = mapped_column(Text)
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger)
    sum_billsec: Mapped[int] = mapped_column(BigInteger)
    sum_sell_amount: Mapped[Decimal] = mapped_column(Numeric)
    sum_cost_amount: Mapped[Decimal] = mapped_column(Numeric)
    columns: Mapped[list[str]] = mapped_column(ARRAY(Text))
    partition_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    archived_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    archived_by: Mapped[Optional[str]] = mapped_column(Text)
    restored_at: Mapped[Optional[datetime]] = mapped_column(TZ)
    restored_by: Mapped[Optional[str]] = mapped_column(Text)


class CdrArchiveTask(db.Model):
    """An archive or restore started from the back office, run in the background (0175)."""
    __tablename__ = "cdr_archive_tasks"
    id: Mapped[int] = _id()
    month: Mapped[date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(Text)         # 'archive' | 'restore'
    status: Mapped[str] = mapped_column(Text, default="queued")
    phase: Mapped[Optional[str]] = mapped_column(Text)
    accept_review: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_by: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=db.func.now())
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZ)


@event.listens_for(Session, "before_flush")
def _revoke_sessions_on_credential_change(session, flush_context, instances) -> None:
    """A new password, a new e-mail address, two-factor sign-in switched on or off, or a
    disabled account revokes every session
    and remember-me cookie issued before (the user loader compares session_version),
    whichever code path made the change: self care, the back office, provisioning, CLI."""
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        state = inspect(obj)
        changed = any(state.attrs[name].history.has_changes() for name in ("password_hash", "email", "totp_enabled_at"))
        disabled = state.attrs.active.history.has_changes() and not obj.active
        if (changed or disabled) and not state.attrs.session_version.history.has_changes():
            obj.session_version = (obj.session_version or 1) + 1
