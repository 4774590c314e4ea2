-- 0151 webhooks (issue 13): the operator's HTTPS endpoint and shared secret in the
-- settings, and webhook deliveries in the outbox the e-mails use (0081), so they get
-- the same retries with backoff, the same 'failed' state and the same retry button.
-- A webhook row: channel 'webhook', kind 'webhook', to_addr the URL, subject the event
-- type (balance.low, invoice.issued, payment.posted, cdr.unrated), body the JSON that
-- is signed and sent, response_status the HTTP status of the last attempt.
ALTER TABLE billing.settings
    ADD COLUMN webhook_url text NULL
        CONSTRAINT ck_settings_webhook_url CHECK (webhook_url ~ '^https://[^\s/?#]+[^\s]*$' AND length(webhook_url) <= 2000),
    ADD COLUMN webhook_secret text NULL
        CONSTRAINT ck_settings_webhook_secret CHECK (webhook_secret ~ '^whsec_[A-Za-z0-9+/=]{40,100}$'),
    ADD COLUMN webhook_events text[] NOT NULL DEFAULT '{balance.low,invoice.issued,payment.posted,cdr.unrated}'
        CONSTRAINT ck_settings_webhook_events
        CHECK (webhook_events <@ '{balance.low,invoice.issued,payment.posted,cdr.unrated}'::text[]);

ALTER TABLE billing.mail_outbox
    ADD COLUMN channel text NOT NULL DEFAULT 'email'
        CONSTRAINT ck_mail_outbox_channel CHECK (channel IN ('email', 'webhook')),
    ADD COLUMN response_status integer NULL,
    DROP CONSTRAINT ck_mail_outbox_kind,
    ADD CONSTRAINT ck_mail_outbox_kind CHECK (kind IN ('low_balance', 'daily_balance', 'invoice', 'other',
                                                        'password_reset', 'email_verification', 'webhook')),
    DROP CONSTRAINT ck_mail_outbox_to_addr,
    ADD CONSTRAINT ck_mail_outbox_to_addr CHECK (channel <> 'email' OR to_addr ~ '^[^@\s]+@[^@\s]+$'),
    DROP CONSTRAINT ck_mail_outbox_to_addr_one_mailbox,
    ADD CONSTRAINT ck_mail_outbox_to_addr_one_mailbox
        CHECK (channel <> 'email' OR to_addr ~ '^[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+$') NOT VALID,
    ADD CONSTRAINT ck_mail_outbox_webhook
        CHECK ((channel = 'webhook') = (kind = 'webhook') AND (channel = 'email' OR to_addr ~ '^https://'));
CREATE INDEX ix_mail_outbox_channel_created_at ON billing.mail_outbox (channel, created_at);
