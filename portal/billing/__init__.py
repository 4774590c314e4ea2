"""CDR billing from Python: top-ups, re-rating, spool import, maintenance.

The rating itself lives in PostgreSQL (sql/procedures/20_cdr_billing.sql); these
services call it and give operators commands (`flask --app wsgi billing ...`).
"""
from .services import BillingError  # noqa: F401
