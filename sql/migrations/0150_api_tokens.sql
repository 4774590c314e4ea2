-- 0150 the REST API (issue 13): tokens, the per-token request counts of the rate limit,
-- and the idempotency keys of money writes. docs/api.md.
--
-- A token is shown once when an admin creates it; only its SHA-256 is stored (like the
-- account tokens of 0102), with a short prefix of the token so people can tell tokens
-- apart in lists. Scope: `read` and `write` see every customer (staff); `customer`
-- sees one customer's data only, read-only.
CREATE TABLE billing.api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_api_tokens PRIMARY KEY,
    name          text NOT NULL CONSTRAINT ck_api_tokens_name CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    token_prefix  text NOT NULL CONSTRAINT ck_api_tokens_token_prefix CHECK (token_prefix ~ '^[A-Za-z0-9_-]{6,16}$'),
    token_hash    bytea NOT NULL CONSTRAINT uq_api_tokens_token_hash UNIQUE
                  CONSTRAINT ck_api_tokens_token_hash CHECK (length(token_hash) = 32),
    scope         text NOT NULL CONSTRAINT ck_api_tokens_scope CHECK (scope IN ('read', 'write', 'customer')),
    customer_id   bigint NULL CONSTRAINT fk_api_tokens_customer_id_customers
                  REFERENCES billing.customers (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    expires_at    timestamptz NULL,          -- NULL: until revoked
    last_used_at  timestamptz NULL,          -- updated at most once a minute
    revoked_at    timestamptz NULL,
    revoked_by    text NULL,
    CONSTRAINT ck_api_tokens_customer_scope CHECK ((scope = 'customer') = (customer_id IS NOT NULL)),
    CONSTRAINT ck_api_tokens_revoked CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX ix_api_tokens_customer_id ON billing.api_tokens (customer_id);

-- Requests per token and minute (fixed windows). Every portal process counts here, so
-- the limit holds across gunicorn workers and servers, as the sign-in throttle's
-- billing.auth_events does. UNLOGGED: counters need no WAL and may be lost in a crash
-- (the worst case is a fresh minute); the housekeeping job deletes old windows.
CREATE UNLOGGED TABLE billing.api_request_counts (
    token_id      bigint NOT NULL,
    window_start  timestamptz NOT NULL,
    requests      integer NOT NULL,
    CONSTRAINT pk_api_request_counts PRIMARY KEY (token_id, window_start)
);

-- Idempotency keys of ledger posts: the first request with a key inserts its row in
-- the transaction that posts the entry, so a concurrent retry with the same key waits
-- on the unique index and then finds the stored answer instead of posting again.
-- Keys are the operator's (shared by its tokens), kept 30 days (housekeeping).
CREATE TABLE billing.api_idempotency_keys (
    key           text NOT NULL CONSTRAINT pk_api_idempotency_keys PRIMARY KEY
                  CONSTRAINT ck_api_idempotency_keys_key CHECK (key ~ '^[\x21-\x7e]{1,255}$'),
    token_id      bigint NULL CONSTRAINT fk_api_idempotency_keys_token_id_api_tokens
                  REFERENCES billing.api_tokens (id) ON DELETE SET NULL,
    fingerprint   bytea NOT NULL CONSTRAINT ck_api_idempotency_keys_fingerprint CHECK (length(fingerprint) = 32),
    status_code   integer NULL,
    response      jsonb NULL,
    location      text NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_api_idempotency_keys_created_at ON billing.api_idempotency_keys (created_at);
