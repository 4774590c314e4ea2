-- 0060 operations: rate deck import jobs and the CDR browser's keyset index.
--
-- billing.rate_imports: one row per uploaded deck. The portal stores the file on disk
-- (instance folder), previews it (validation + diff, rolled back) and applies it in
-- a background thread that writes its phase and progress here so the page can poll.
CREATE TABLE billing.rate_imports (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_rate_imports PRIMARY KEY,
    target           text NOT NULL CONSTRAINT ck_rate_imports_target CHECK (target IN ('ratecard', 'provider')),
    ratecard_id      bigint NULL CONSTRAINT fk_rate_imports_ratecard_id_ratecards REFERENCES billing.ratecards (id) ON DELETE CASCADE,
    provider_id      bigint NULL CONSTRAINT fk_rate_imports_provider_id_providers REFERENCES billing.providers (id) ON DELETE CASCADE,
    filename         text NOT NULL,
    stored_path      text NOT NULL,
    options          jsonb NOT NULL DEFAULT '{}'::jsonb,
    effective_from   timestamptz NULL,
    status           text NOT NULL DEFAULT 'uploaded' CONSTRAINT ck_rate_imports_status CHECK (status IN ('uploaded', 'previewed', 'invalid', 'running', 'done', 'failed')),
    phase            text NULL,
    total_lines      integer NULL,
    processed_lines  integer NOT NULL DEFAULT 0,
    errors           jsonb NOT NULL DEFAULT '[]'::jsonb,
    summary          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by       text NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz NULL,
    finished_at      timestamptz NULL,
    CONSTRAINT ck_rate_imports_owner CHECK ((target = 'ratecard') = (ratecard_id IS NOT NULL)
                                        AND (target = 'provider') = (provider_id IS NOT NULL))
);
CREATE INDEX ix_rate_imports_created_at ON billing.rate_imports (created_at);

-- Keyset pagination of the CDR browser orders by (start_stamp, id): an index with
-- both columns lets every page be an index range scan (merge-appended over partitions).
CREATE INDEX ix_cdr_start_stamp_id ON billing.cdr (start_stamp, id);
CREATE INDEX ix_cdr_customer_id_start_stamp_id ON billing.cdr (customer_id, start_stamp, id);
