-- 0112 re-rating from the back office: a period (and optionally a customer and/or a
-- provider) is previewed -- what the re-rate would move, per customer -- then applied
-- in a background job whose phase and progress the page polls (docs/billing.md
-- "Re-rating"; portal/rerate/).
CREATE TABLE billing.rerate_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_rerate_jobs PRIMARY KEY,
    period_from     timestamptz NOT NULL,
    period_to       timestamptz NOT NULL,          -- exclusive
    customer_id     bigint NULL CONSTRAINT fk_rerate_jobs_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    provider_id     bigint NULL CONSTRAINT fk_rerate_jobs_provider_id_providers REFERENCES billing.providers (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'previewing' CONSTRAINT ck_rerate_jobs_status
                    CHECK (status IN ('previewing', 'previewed', 'running', 'done', 'failed')),
    phase           text NULL,
    step            integer NOT NULL DEFAULT 0,    -- progress: step of steps
    steps           integer NOT NULL DEFAULT 1,
    calls           bigint NULL,                   -- raw CDRs in the selection
    preview         jsonb NOT NULL DEFAULT '[]'::jsonb,   -- per customer: calls, changed, sell/cost before/after
    previewed_at    timestamptz NULL,
    result          jsonb NOT NULL DEFAULT '{}'::jsonb,   -- rerated, still unrated, ledger entries per customer
    error           text NULL,
    created_by      text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz NULL,
    finished_at     timestamptz NULL,
    CONSTRAINT ck_rerate_jobs_period CHECK (period_to > period_from)
);
CREATE INDEX ix_rerate_jobs_created_at ON billing.rerate_jobs (created_at);

-- rerate gains a provider filter, rerate_prepare the parameter behind it.
DROP FUNCTION IF EXISTS billing_private.rerate(timestamptz, timestamptz, bigint);
DROP FUNCTION IF EXISTS billing_private.rerate_prepare(text, timestamptz, timestamptz, bigint, bigint);
