-- 0026 Credit in quotas and calls that never cost more than their hold (CONTRACT 1b of
-- DESIGN.md, revision 2; docs/billing.md, "Holds and quotas").
--
-- * settings: the quota a hold covers at a time (NULL: the whole max_duration, as in
--   revision 1), how long before a grant runs out the switch asks for the next one,
--   and how long one carrier may ring (route.lua's call_timeout, and the set-up time a
--   hold must outlive: routes x ring timeout).
-- * call_holds: what the hold grants (seconds since answer; NULL, as in holds written
--   before this migration: all of max_duration), the rate terms that price a grant (so
--   a re-authorization charges exactly what CDR billing will), when it was last granted
--   and how many grants it had.
-- * fs_cdr.held_seconds: the grant of the call's hold when its CDR was billed (NULL: no
--   hold); billing.cdr keeps it with the seconds billed beyond it (overrun) and the
--   review flags no_hold / absurd_duration.
-- * the signatures that change (route_call's new column granted_seconds, rating with
--   a cap) are dropped here; sql/procedures re-creates them.

ALTER TABLE billing.settings
    ADD COLUMN quota_seconds integer DEFAULT 300,
    ADD COLUMN reauth_margin_seconds integer NOT NULL DEFAULT 10,
    ADD COLUMN ring_timeout_seconds integer NOT NULL DEFAULT 60,
    ADD CONSTRAINT ck_settings_quota_seconds CHECK (quota_seconds IS NULL OR quota_seconds BETWEEN 2 AND 604800),
    ADD CONSTRAINT ck_settings_reauth_margin CHECK (
        reauth_margin_seconds >= 1 AND (quota_seconds IS NULL OR reauth_margin_seconds < quota_seconds)),
    ADD CONSTRAINT ck_settings_ring_timeout CHECK (ring_timeout_seconds BETWEEN 5 AND 600);

ALTER TABLE billing.call_holds
    ADD COLUMN granted_seconds integer,
    ADD COLUMN connect_fee billing.money NOT NULL DEFAULT 0,
    ADD COLUMN min_duration integer NOT NULL DEFAULT 0,
    ADD COLUMN increment_first integer NOT NULL DEFAULT 1,
    ADD COLUMN increment_next integer NOT NULL DEFAULT 1,
    ADD COLUMN grants integer NOT NULL DEFAULT 1,
    ADD COLUMN granted_at timestamptz NOT NULL DEFAULT now();
-- Holds of calls in progress during the upgrade covered their whole max_duration.
UPDATE billing.call_holds SET granted_seconds = max_duration, granted_at = created_at;

ALTER TABLE billing.fs_cdr ADD COLUMN held_seconds integer;

ALTER TABLE billing.cdr
    ADD COLUMN held_seconds integer,
    ADD COLUMN overrun_seconds integer NOT NULL DEFAULT 0,
    ADD COLUMN no_hold boolean NOT NULL DEFAULT false,
    ADD COLUMN absurd_duration boolean NOT NULL DEFAULT false;
-- Calls to review (CDR browser filter, dashboard count): few rows, a partial index.
CREATE INDEX ix_cdr_review ON billing.cdr (start_stamp)
    WHERE overrun_seconds > 0 OR no_hold OR absurd_duration;

ALTER TYPE billing_private.rated_call ADD ATTRIBUTE overrun_seconds integer;

DROP FUNCTION IF EXISTS billing.route_call(text, inet, text, text, text);
DROP FUNCTION IF EXISTS billing.route_preview(text, inet, text, text, text);
DROP FUNCTION IF EXISTS billing_private.route_decide(text, inet, text, text, text, boolean);
DROP FUNCTION IF EXISTS billing.route_options(bigint, text);
DROP FUNCTION IF EXISTS billing_private.rate_cdr(bigint, text, timestamptz, timestamptz, integer, bigint, text);
DROP FUNCTION IF EXISTS billing_private.rate_cdr_with(
    bigint, bigint, text, timestamptz, timestamptz, integer, bigint, bigint, text,
    bigint, text, numeric, numeric, integer, integer, integer,
    bigint, numeric, numeric, integer, integer, integer);
