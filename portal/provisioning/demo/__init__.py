"""`flask --app wsgi seed-demo`: a small, realistic and deterministic demo data set.

The configuration is `demo.yaml` (customers, endpoints, carriers, logins) plus a
destination catalogue (catalogue.py) and rate lists (rates.py) generated with a
seeded random generator, loaded through the provisioning loader like any operator's
file (document.py). Then about 1,200 calls of the last 45 days are inserted into
`billing.fs_cdr` exactly as FreeSWITCH would write them after route.lua (calls.py;
billing_* variables from the same rates and routing rules, plan.py), with fixed
uuids and ON CONFLICT (uuid) DO NOTHING.

Idempotent: every run upserts the same configuration (an edited demo entity is put
back), a customer's opening balance is only applied when it is created, and calls
already inserted are skipped. A database that holds other customers but none of the
demo's is left alone unless --force.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select, text

from ...extensions import db
from ...models import Customer
from ..loader import Summary, load_document
from .calls import CALLS_PER_CUSTOMER, generate_calls, insert_calls
from .document import DEMO_PASSWORD_HASHES, DEMO_YAML, build_document
from .plan import Plan

__all__ = ["CALLS_PER_CUSTOMER", "DEMO_PASSWORD_HASHES", "PREPAID_LEFT", "DemoRefused", "DemoResult", "Plan",
           "build_document", "generate_calls", "seed"]

# Prepaid customers start with what their demo calls cost plus this much, so their
# balance ends here once the calls are billed.
PREPAID_LEFT = {"acme": Decimal("42.50"), "initech": Decimal("3.20")}

ANALYZED_TABLES = ("billing.destinations", "billing.rates", "billing.provider_rates", "billing.customer_ratecards",
                   "billing.endpoints", "billing.gateways", "billing.routing_rules")


@dataclass
class DemoResult:
    summary: Summary
    calls_inserted: int
    calls_total: int
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = list(self.summary.lines())
        out.append(f"demo calls: {self.calls_inserted} inserted into billing.fs_cdr, "
                   f"{self.calls_total - self.calls_inserted} already there")
        out.append("Demo logins:")
        out += [f"  {email} / {password}  (customer {customer})" for email, password, customer in self.logins]
        return out


class DemoRefused(RuntimeError):
    """The database holds someone's real data: the demo is not added to it."""


def seed(force: bool = False, now: datetime | None = None) -> DemoResult:
    """Load the demo configuration and calls in one transaction and commit."""
    now = now or datetime.now(timezone.utc)
    session = db.session
    document = build_document(now.date())
    demo_names = [c["name"] for c in document["customers"]]
    others = session.scalar(select(Customer.id).where(Customer.name.not_in(demo_names)).limit(1))
    ours = session.scalar(select(Customer.id).where(Customer.name.in_(demo_names)).limit(1))
    if others is not None and ours is None and not force:
        raise DemoRefused("seed-demo: this database already holds customers that are not demo data; "
                          "nothing was added (use --force to add the demo anyway)")
    plan = Plan.from_document(document)
    calls = generate_calls(plan, now)
    spent: dict[str, Decimal] = {}
    for call in calls:
        spent[call.customer] = spent.get(call.customer, Decimal(0)) + call.charge
    for customer in document["customers"]:
        if customer["name"] in PREPAID_LEFT:
            customer["balance"] = str(PREPAID_LEFT[customer["name"]] + spent.get(customer["name"], Decimal(0)))
    logins = []
    for customer in document["customers"]:
        for user in customer.get("users", []):
            logins.append((str(user["email"]), str(user["password"]), customer["name"]))
            if user["email"] in DEMO_PASSWORD_HASHES:
                user["password_hash"] = DEMO_PASSWORD_HASHES[user["email"]]
                del user["password"]
    try:
        summary = load_document(document, base_dir=DEMO_YAML.parent, actor="seed-demo", commit=False)
        # Fresh tables have no statistics: without them the planner scans a whole
        # ratecard per rate lookup (find_sell_rate) when the billing trigger rates the
        # calls below. ANALYZE sees this transaction's own rows.
        session.execute(text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))
        inserted = insert_calls(calls)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return DemoResult(summary, inserted, len(calls), logins)
