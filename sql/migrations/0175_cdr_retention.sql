-- 0175 CDR retention (issue #14, docs/scaling-retention.md): monthly billing.cdr
-- partitions older than settings.cdr_retention_months are archived to a gzip CSV file
-- with a JSON manifest (portal/retention/), verified, then detached and dropped; an
-- archived month can be restored (re-created and attached from its file) and archived
-- again later.

-- Months of rated CDRs kept in the database, not counting the current month; 0 keeps
-- every month (no automatic archive). The current and the last month are never
-- archived, whatever the setting.
ALTER TABLE billing.settings
    ADD COLUMN cdr_retention_months integer NOT NULL DEFAULT 24
        CONSTRAINT ck_settings_cdr_retention_months CHECK (cdr_retention_months BETWEEN 0 AND 1200);

-- One row per month that has been archived at least once. `state` says where its CDRs
-- are now: 'archived' (only in the file: the partition is dropped) or 'restored' (the
-- partition is attached again, the file is kept). The figures are the manifest's, the
-- checksum is the file's: a restore compares the file with both.
CREATE TABLE billing.cdr_archives (
    month            date NOT NULL CONSTRAINT pk_cdr_archives PRIMARY KEY
                     CONSTRAINT ck_cdr_archives_month CHECK (month = date_trunc('month', month)::date),
    partition_name   text NOT NULL,
    range_from       timestamptz NOT NULL,
    range_to         timestamptz NOT NULL,
    state            text NOT NULL CONSTRAINT ck_cdr_archives_state CHECK (state IN ('archived', 'restored')),
    file_name        text NOT NULL,
    file_bytes       bigint NOT NULL,
    sha256           text NOT NULL CONSTRAINT ck_cdr_archives_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    rows             bigint NOT NULL,
    sum_billsec      bigint NOT NULL,
    sum_sell_amount  numeric NOT NULL,
    sum_cost_amount  numeric NOT NULL,
    columns          text[] NOT NULL,
    partition_bytes  bigint NULL,          -- size on disk (table + indexes) when it was dropped
    archived_at      timestamptz NOT NULL DEFAULT now(),
    archived_by      text NULL,
    restored_at      timestamptz NULL,
    restored_by      text NULL,
    CONSTRAINT ck_cdr_archives_range CHECK (range_to > range_from)
);

-- Archives and restores started from the back office run in the background; the page
-- polls the task's phase (like billing.rerate_jobs, 0112).
CREATE TABLE billing.cdr_archive_tasks (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_cdr_archive_tasks PRIMARY KEY,
    month        date NOT NULL,
    action       text NOT NULL CONSTRAINT ck_cdr_archive_tasks_action CHECK (action IN ('archive', 'restore')),
    status       text NOT NULL DEFAULT 'queued'
                 CONSTRAINT ck_cdr_archive_tasks_status CHECK (status IN ('queued', 'running', 'done', 'refused', 'failed')),
    phase        text NULL,
    accept_review boolean NOT NULL DEFAULT false,
    result       text NULL,
    error        text NULL,
    created_by   text NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz NULL
);
CREATE INDEX ix_cdr_archive_tasks_month ON billing.cdr_archive_tasks (month, id);
