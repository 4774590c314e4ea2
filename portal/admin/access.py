"""Who may use which back-office page: one explicit rule per route of the admin blueprint.

Roles: `admin` (everything), `finance` (money, invoices, reports; no routing),
`support` (read-only; looks up customers, their calls and the routing of a call).
Reading the table row by row is the review: tests/security/test_roles.py walks every
admin route as finance and as support against it, and fails when a route has no rule.
A route missing here stays admin-only at run time (fail closed).
"""
from __future__ import annotations

ADMIN = frozenset({"admin"})
MONEY = frozenset({"admin", "finance"})             # money, invoices, reports
LOOKUP = frozenset({"admin", "support"})            # read-only views of routing and accounts
READ = frozenset({"admin", "finance", "support"})   # read-only views every staff role needs

RULES: dict[str, frozenset[str]] = {
    # dashboard, customers
    "admin.dashboard": READ,
    "admin.customers": READ,
    "admin.customer": READ,
    "admin.customer_new": ADMIN,
    "admin.customer_edit": ADMIN,
    "admin.customer_toggle": ADMIN,
    "admin.customer_delete": ADMIN,
    "admin.customer_ledger": MONEY,          # top-up, payment, credit note, adjustment
    # calls
    "admin.cdrs": READ,
    "admin.cdrs_totals": READ,
    "admin.cdrs_export": READ,
    "admin.cdr_rerate": MONEY,
    "admin.cdr_detail": READ,                # one call: routes, causes, sell/cost/margin, ledger, raw CDR
    # re-rating a period: preview what it moves (money), then apply it
    "admin.rerate_new": MONEY,
    "admin.rerate_job": MONEY,
    "admin.rerate_job_status": MONEY,
    "admin.rerate_again": MONEY,
    "admin.rerate_apply": MONEY,
    # invoices and their mail
    "admin.invoices": READ,
    "admin.invoices_detail": READ,
    "admin.invoices_pdf": READ,
    "admin.invoices_generate": MONEY,
    "admin.invoices_issue": MONEY,
    "admin.invoices_credit_note": MONEY,
    "admin.invoices_delete": MONEY,
    "admin.invoices_resend": MONEY,
    "admin.invoices_overdue": READ,
    "admin.invoices_payment": MONEY,         # a payment received, allocated to invoices
    "admin.invoices_remind": MONEY,          # a reminder mail of an overdue invoice
    "admin.mail": MONEY,
    "admin.mail_detail": MONEY,
    "admin.mail_retry": MONEY,
    "admin.mail_test": MONEY,                # a test e-mail to check the SMTP settings (audited)
    # reports
    "admin.reports": MONEY,
    "admin.reports_csv": MONEY,
    # scheduled jobs
    "admin.jobs": READ,
    "admin.job_run_detail": READ,
    "admin.job_run": ADMIN,
    # CDR retention: monthly partitions archived to files, restored on demand (admin only)
    "admin.cdr_partitions": ADMIN,
    "admin.cdr_partition_archive": ADMIN,
    "admin.cdr_partition_restore": ADMIN,
    "admin.cdr_archive_task_status": ADMIN,
    "admin.cdr_retention": ADMIN,
    # sell prices
    "admin.ratecards": READ,
    "admin.ratecard": READ,
    "admin.rate_export": READ,
    "admin.ratecard_new": ADMIN,
    "admin.ratecard_edit": ADMIN,
    "admin.ratecard_delete": ADMIN,
    "admin.rate_new": ADMIN,
    "admin.rate_edit": ADMIN,                # a change is a new version from an effective date
    "admin.rate_end": ADMIN,
    "admin.rate_delete": ADMIN,              # scheduled rates only
    "admin.rate_history": READ,              # every version of one prefix
    "admin.rate_imports": LOOKUP,
    "admin.rate_import": LOOKUP,
    "admin.rate_import_status": LOOKUP,
    "admin.rate_import_new": ADMIN,
    "admin.rate_import_mapping": ADMIN,
    "admin.rate_import_run": ADMIN,
    # destination catalogue (routing)
    "admin.destinations": LOOKUP,
    "admin.destination_new": ADMIN,
    "admin.destination_edit": ADMIN,
    "admin.destination_delete": ADMIN,
    "admin.weights": LOOKUP,
    "admin.weight_new": ADMIN,
    "admin.weight_edit": ADMIN,
    "admin.weight_delete": ADMIN,
    "admin.permissions": LOOKUP,
    "admin.permission_new": ADMIN,
    "admin.permission_edit": ADMIN,
    "admin.permission_delete": ADMIN,
    # endpoints (SIP passwords are on the edit pages)
    "admin.endpoints": LOOKUP,
    "admin.endpoint_new": ADMIN,
    "admin.endpoint_edit": ADMIN,
    "admin.endpoint_toggle": ADMIN,
    "admin.endpoint_delete": ADMIN,
    "admin.endpoint_rotate_password": ADMIN,
    # providers, gateways, cost rates, routing rules (routing)
    "admin.providers": LOOKUP,
    "admin.provider": LOOKUP,
    "admin.provider_new": ADMIN,
    "admin.provider_edit": ADMIN,
    "admin.provider_toggle": ADMIN,
    "admin.provider_delete": ADMIN,
    "admin.gateway_new": ADMIN,
    "admin.gateway_edit": ADMIN,
    "admin.gateway_toggle": ADMIN,
    "admin.gateway_delete": ADMIN,
    "admin.provider_rate_new": ADMIN,
    "admin.provider_rate_edit": ADMIN,
    "admin.provider_rate_end": ADMIN,
    "admin.provider_rate_delete": ADMIN,
    "admin.provider_rate_history": LOOKUP,
    # exchange rates (cost conversion: routing and billing)
    "admin.exchange_rates": LOOKUP,
    "admin.exchange_rates_csv": LOOKUP,
    "admin.exchange_rate_new": ADMIN,
    "admin.exchange_rate_close": ADMIN,
    "admin.exchange_rates_import": ADMIN,
    "admin.routing_rules": LOOKUP,
    "admin.routing_rule_new": ADMIN,
    "admin.routing_rule_edit": ADMIN,
    "admin.routing_rule_delete": ADMIN,
    "admin.simulator": LOOKUP,
    # the switch
    "admin.switch": LOOKUP,
    "admin.switch_hangup": ADMIN,
    "admin.switch_gateway": ADMIN,
    # customers' portal users
    "admin.users": LOOKUP,
    "admin.user_new": ADMIN,
    "admin.user_edit": ADMIN,
    "admin.user_password": ADMIN,
    "admin.user_toggle": ADMIN,
    "admin.user_delete": ADMIN,
    # staff, sign-ins, settings, audit
    "admin.staff": ADMIN,
    "admin.staff_new": ADMIN,
    "admin.staff_edit": ADMIN,
    "admin.staff_password": ADMIN,
    "admin.staff_reset_two_factor": ADMIN,
    "admin.user_sign_out": ADMIN,
    "admin.sign_ins": ADMIN,
    "admin.settings": ADMIN,
    "admin.audit_log": ADMIN,
    # the REST API: tokens and webhooks (docs/api.md)
    "admin.api_tokens": ADMIN,
    "admin.api_token_new": ADMIN,
    "admin.api_token_revoke": ADMIN,
    "admin.webhooks_page": ADMIN,
    "admin.webhook_detail": ADMIN,
    "admin.webhook_retry": ADMIN,
}


def allowed(role: str | None, endpoint: str | None) -> bool:
    if role is None or endpoint is None:
        return False
    return role in RULES.get(endpoint, ADMIN)
