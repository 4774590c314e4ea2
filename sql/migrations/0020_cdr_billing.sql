-- 0020: indexes for CDR billing.
-- Re-rating selects raw CDRs by period (start_stamp; rows without one by received_at,
-- which ix_fs_cdr_unrated already covers for the unrated ones) and optionally customer.
CREATE INDEX ix_fs_cdr_start_stamp ON billing.fs_cdr (start_stamp);

-- The result of rating one call (billing_private.rate_cdr / rate_cdr_with), one type
-- so the trigger and re-rating read the same columns.
CREATE TYPE billing_private.rated_call AS (
    status              text,
    unrated_reason      text,
    customer_id         bigint,
    provider_id         bigint,
    sell_rate_id        bigint,
    sell_prefix         text,
    sell_rate           numeric,
    billed_seconds      integer,
    sell_amount         numeric,
    cost_rate_id        bigint,
    cost_rate           numeric,
    cost_billed_seconds integer,
    cost_amount         numeric
);
