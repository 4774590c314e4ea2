-- 0103 two-factor authentication with an authenticator app (TOTP, RFC 6238) and
-- recovery codes (issue 12, item 9).
ALTER TABLE billing.users
    -- base32 secret shared with the app; set at enrolment, confirmed by a first code
    ADD COLUMN totp_secret      text NULL CONSTRAINT ck_users_totp_secret CHECK (totp_secret ~ '^[A-Z2-7]{16,64}$'),
    ADD COLUMN totp_enabled_at  timestamptz NULL,
    -- the 30-second step of the last code accepted: a code is good once (no replay)
    ADD COLUMN totp_last_step   bigint NULL,
    ADD CONSTRAINT ck_users_totp_enabled_has_secret CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL);

-- One-time codes for a lost phone; SHA-256 of each, shown in clear once.
CREATE TABLE billing.recovery_codes (
    id         bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_recovery_codes PRIMARY KEY,
    user_id    bigint NOT NULL CONSTRAINT fk_recovery_codes_user_id_users REFERENCES billing.users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CONSTRAINT ck_recovery_codes_code_hash CHECK (length(code_hash) = 32),
    used_at    timestamptz NULL,
    CONSTRAINT uq_recovery_codes_user_id_code_hash UNIQUE (user_id, code_hash)
);

-- The operator's switch: staff (admin, finance, support) must use two-factor sign-in.
ALTER TABLE billing.settings
    ADD COLUMN staff_two_factor_required boolean NOT NULL DEFAULT false;
