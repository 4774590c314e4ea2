-- 0102 single-use tokens sent by e-mail (issue 12, items 8 and 9): password reset links
-- and the link that verifies a customer's new e-mail address. Only a SHA-256 of each
-- token is stored, so a copy of the database cannot be used to reset a password.
CREATE TABLE billing.account_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_account_tokens PRIMARY KEY,
    user_id     bigint NOT NULL CONSTRAINT fk_account_tokens_user_id_users REFERENCES billing.users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CONSTRAINT ck_account_tokens_purpose CHECK (purpose IN ('password_reset', 'email_verification')),
    token_hash  bytea NOT NULL CONSTRAINT uq_account_tokens_token_hash UNIQUE CONSTRAINT ck_account_tokens_token_hash CHECK (length(token_hash) = 32),
    -- the address being verified (email_verification only)
    email       text NULL CONSTRAINT ck_account_tokens_email CHECK (email ~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NULL,
    CONSTRAINT ck_account_tokens_email_purpose CHECK ((purpose = 'email_verification') = (email IS NOT NULL))
);
CREATE INDEX ix_account_tokens_user_id ON billing.account_tokens (user_id);

-- A customer's e-mail address is exactly one mailbox: no lists (`victim@x,attacker@y`),
-- no display names or angle brackets. Addresses that an older version accepted and that
-- are not a single mailbox are removed (with an audit row each), alerts with them.
INSERT INTO billing.audit_log (actor, action, entity, entity_id, details)
SELECT 'migration 0102', 'email_removed', 'customer', id::text,
       jsonb_build_object('email', email, 'why', 'not a single mailbox')
  FROM billing.customers
 WHERE email IS NOT NULL AND email !~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$';
UPDATE billing.customers
   SET email = NULL, daily_balance_email = false
 WHERE email IS NOT NULL AND email !~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$';
ALTER DOMAIN billing.customer_email DROP CONSTRAINT ck_customers_email;
ALTER DOMAIN billing.customer_email
    ADD CONSTRAINT ck_customers_email CHECK (VALUE ~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$');

-- The outbox carries the two new kinds of mail; its recipient is one mailbox too (rows
-- queued before are left as they are: NOT VALID checks only new and changed rows).
ALTER TABLE billing.mail_outbox
    DROP CONSTRAINT ck_mail_outbox_kind,
    ADD CONSTRAINT ck_mail_outbox_kind CHECK (kind IN ('low_balance', 'daily_balance', 'invoice', 'other',
                                                        'password_reset', 'email_verification')),
    ADD CONSTRAINT ck_mail_outbox_to_addr_one_mailbox CHECK (to_addr ~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$') NOT VALID;
