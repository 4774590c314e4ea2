-- 0081 mail outbox and scheduled-job runs (docs/jobs.md).
--
-- Senders only INSERT into the outbox, in the same transaction as the change that
-- causes the mail (an issued invoice, a notified balance event), so a mail is never
-- lost and never sent for a change that rolled back. The delivery job sends, retries
-- with backoff, and after max_attempts leaves the row 'failed' for an admin to see.

CREATE TABLE billing.mail_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_mail_outbox PRIMARY KEY,
    kind             text NOT NULL CONSTRAINT ck_mail_outbox_kind CHECK (kind IN ('low_balance', 'daily_balance', 'invoice', 'other')),
    to_addr          text NOT NULL CONSTRAINT ck_mail_outbox_to_addr CHECK (to_addr ~ '^[^@\s]+@[^@\s]+$'),
    subject          text NOT NULL CONSTRAINT ck_mail_outbox_subject CHECK (length(subject) BETWEEN 1 AND 300 AND subject !~ '[\r\n]'),
    body             text NOT NULL,
    customer_id      bigint NULL CONSTRAINT fk_mail_outbox_customer_id_customers REFERENCES billing.customers (id) ON DELETE SET NULL,
    invoice_id       bigint NULL CONSTRAINT fk_mail_outbox_invoice_id_invoices REFERENCES billing.invoices (id) ON DELETE RESTRICT,
    -- Makes enqueueing idempotent: a job that runs twice does not mail twice.
    dedupe_key       text NULL CONSTRAINT uq_mail_outbox_dedupe_key UNIQUE,
    status           text NOT NULL DEFAULT 'pending' CONSTRAINT ck_mail_outbox_status CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CONSTRAINT ck_mail_outbox_attempts CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 8 CONSTRAINT ck_mail_outbox_max_attempts CHECK (max_attempts >= 1),
    last_error       text NULL,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_mail_outbox_sent_at CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX ix_mail_outbox_due ON billing.mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ix_mail_outbox_created_at ON billing.mail_outbox (created_at);

CREATE TABLE billing.job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_job_runs PRIMARY KEY,
    job          text NOT NULL CONSTRAINT ck_job_runs_job CHECK (job ~ '^[a-z0-9_]{1,64}$'),
    trigger      text NOT NULL CONSTRAINT ck_job_runs_trigger CHECK (trigger IN ('scheduler', 'cli', 'admin', 'test')),
    host         text NOT NULL,           -- hostname:pid of the process that ran it
    status       text NOT NULL DEFAULT 'running' CONSTRAINT ck_job_runs_status CHECK (status IN ('running', 'ok', 'error', 'skipped')),
    result       text NULL,
    error        text NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz NULL,
    CONSTRAINT ck_job_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX ix_job_runs_job_started_at ON billing.job_runs (job, started_at);
CREATE INDEX ix_job_runs_started_at ON billing.job_runs (started_at);
