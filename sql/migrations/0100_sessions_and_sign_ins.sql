-- 0100 revocable sessions and the sign-in log (issue 12, items 2 and 3).
--
-- session_version: a session cookie and a remember-me cookie carry the version they were
-- issued under; the portal's user loader accepts them only while it is still the
-- user's. Signing out, a password change, a disabled account and an admin's "sign out
-- everywhere" increment it, so every copy of an older cookie is worthless.
ALTER TABLE billing.users
    ADD COLUMN session_version integer NOT NULL DEFAULT 1 CONSTRAINT ck_users_session_version CHECK (session_version > 0);

-- Every sign-in attempt and the other account events, for two readers: admins (who,
-- when, from where, success) and the throttle, which counts recent failures of one
-- account and of one client address here, so all portal processes share one count.
CREATE TABLE billing.auth_events (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_auth_events PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CONSTRAINT ck_auth_events_kind CHECK (kind IN (
                    'login', 'second_factor', 'logout', 'password_reset_request', 'password_reset')),
    -- the account asked for, as typed (lower-cased), also when no such user exists
    email       text NULL CONSTRAINT ck_auth_events_email CHECK (length(email) <= 320),
    user_id     bigint NULL CONSTRAINT fk_auth_events_user_id_users REFERENCES billing.users (id) ON DELETE SET NULL,
    client_ip   inet NULL,
    success     boolean NOT NULL,
    -- why it failed (wrong_password, unknown_account, disabled, throttled, wrong_code ...)
    reason      text NULL CONSTRAINT ck_auth_events_reason CHECK (length(reason) <= 64),
    user_agent  text NULL CONSTRAINT ck_auth_events_user_agent CHECK (length(user_agent) <= 300)
);
CREATE INDEX ix_auth_events_at ON billing.auth_events (at);
-- The throttle's two counts: failures of one account, failures from one client.
CREATE INDEX ix_auth_events_email_at ON billing.auth_events (email, at) WHERE NOT success;
CREATE INDEX ix_auth_events_client_ip_at ON billing.auth_events (client_ip, at) WHERE NOT success;
CREATE INDEX ix_auth_events_user_id_at ON billing.auth_events (user_id, at);
