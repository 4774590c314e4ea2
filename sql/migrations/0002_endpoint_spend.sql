-- 0002: what each endpoint spent per calendar month (sell side), so route_call can
-- enforce `spend_limit_month` with one primary-key lookup instead of summing CDRs.
-- Kept up to date by CDR billing in the same transaction as the ledger debit.
CREATE TABLE billing.endpoint_month_spend (
    endpoint_id  bigint NOT NULL CONSTRAINT fk_endpoint_month_spend_endpoint_id_endpoints REFERENCES billing.endpoints (id) ON DELETE CASCADE,
    month        date NOT NULL CONSTRAINT ck_endpoint_month_spend_month CHECK (month = date_trunc('month', month)::date),
    amount       billing.money NOT NULL DEFAULT 0,
    CONSTRAINT pk_endpoint_month_spend PRIMARY KEY (endpoint_id, month)
);
