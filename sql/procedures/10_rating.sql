-- Rating primitives shared by call set-up (billing.route_call) and CDR billing.
-- One definition of the rules, written down in docs/rounding.md:
--
--   billed seconds of an answered call = max(billsec, min_duration), rounded up to
--     `first`, then to whole `next` blocks beyond it; an unanswered call (billsec 0)
--     bills 0 seconds.
--   charge = connect_fee + billed_seconds * rate / 60, rounded half-up to 6 decimals
--     (PostgreSQL's round(numeric) rounds half away from zero, which is half-up for
--     the non-negative amounts here); 0 when billsec is 0 (no connect fee either).
--
-- Cost: pure arithmetic, IMMUTABLE, no table access.

-- All prefixes of a digit string, longest first: '336' -> {336,33,3}; NULL for ''.
-- Used with `prefix = ANY(...)` so a btree index on prefix finds the longest match.
-- PL/pgSQL rather than SQL: an SQL function with an aggregate is planned again at
-- every call, which cost route_call 8 us per use (docs/performance-route.md).
CREATE OR REPLACE FUNCTION billing_private.prefixes(p_number text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_prefixes text[];
BEGIN
    FOR i IN REVERSE length(p_number) .. 1 LOOP
        v_prefixes := v_prefixes || left(p_number, i);
    END LOOP;
    RETURN v_prefixes;
END $$;

CREATE OR REPLACE FUNCTION billing_private.billed_seconds(
    p_billsec integer, p_min_duration integer, p_first integer, p_next integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(p_billsec, 0) <= 0 THEN 0
        WHEN greatest(p_billsec, coalesce(p_min_duration, 0)) <= p_first THEN p_first
        ELSE p_first + ((greatest(p_billsec, coalesce(p_min_duration, 0)) - p_first + p_next - 1) / p_next) * p_next
    END
$$;

CREATE OR REPLACE FUNCTION billing_private.charge(
    p_billsec integer, p_rate numeric, p_connect_fee numeric,
    p_min_duration integer, p_first integer, p_next integer)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(p_billsec, 0) <= 0 THEN 0::numeric
        ELSE round(coalesce(p_connect_fee, 0)
                   + billing_private.billed_seconds(p_billsec, p_min_duration, p_first, p_next) * p_rate / 60, 6)
    END
$$;

-- The longest call (seconds of billsec) whose charge fits in p_available, capped at
-- p_cap. 0 when even the first increment does not fit (insufficient funds). A free
-- rate (0 per minute) gets the cap as long as the connect fee fits.
-- Because p_available has 6 decimals, connect_fee + b * rate / 60 <= p_available
-- implies its half-up rounding to 6 decimals is <= p_available too.
-- The cap is applied after the funds are put on the increment grid: a cap off the grid
-- (100 s with 60/60) bills the whole next block (120 s), so it is only taken when the
-- grid value the funds allow reaches it; otherwise the grid value is the answer.
CREATE OR REPLACE FUNCTION billing_private.max_duration(
    p_available numeric, p_rate numeric, p_connect_fee numeric,
    p_min_duration integer, p_first integer, p_next integer, p_cap integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_budget   numeric := p_available - coalesce(p_connect_fee, 0);
    v_floor    integer := billing_private.billed_seconds(1, p_min_duration, p_first, p_next);
    v_max_bill numeric;
    v_billed   integer;
BEGIN
    IF v_budget < 0 OR billing_private.charge(1, p_rate, p_connect_fee, p_min_duration, p_first, p_next) > p_available THEN
        RETURN 0;
    END IF;
    IF p_rate = 0 THEN
        RETURN p_cap;
    END IF;
    -- Any grid point at or beyond the cap will do: clamp so the arithmetic below stays
    -- in integer range whatever the funds (a grid point lies within `next` below).
    v_max_bill := least(floor(v_budget * 60 / p_rate),
                        p_cap::numeric + greatest(p_first, p_next, coalesce(p_min_duration, 0)));
    -- Largest value on the increment grid (first, first + k*next) that fits.
    v_billed := p_first + floor((v_max_bill - p_first) / p_next)::integer * p_next;
    IF v_billed < v_floor THEN
        -- Only the minimum-duration floor is billed up to v_floor; it fits (checked above).
        v_billed := least(v_floor, v_max_bill::integer);
    END IF;
    RETURN least(greatest(v_billed, 1), p_cap);
END $$;

-- The seconds one grant of credit covers (CONTRACT 1b): the quota rounded up to the
-- rate's increments (what a call of that length bills), never more than the call may
-- last on the funds (p_max_duration); the whole max_duration when p_quota is NULL.
CREATE OR REPLACE FUNCTION billing_private.grant_seconds(
    p_quota integer, p_max_duration integer, p_min_duration integer, p_first integer, p_next integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_quota IS NULL THEN p_max_duration
                ELSE least(p_max_duration, billing_private.billed_seconds(p_quota, p_min_duration, p_first, p_next))
           END
$$;

-- The customer's sell rate for a canonical number at a moment: ratecards in priority
-- order (1 first); in the first ratecard that has a valid rate, the longest prefix
-- wins. Valid: valid_from <= p_at < valid_to (NULL = open) and not blocked.
-- Two valid rates of one prefix (overlapping validity, e.g. a new price imported
-- before the old one was closed): the latest valid_from wins (a NULL valid_from, open
-- since always, is the oldest), then the highest id (the last one entered). The same
-- rule as billing_private.rerate (21_rerate.sql), so the trigger and a re-rate agree.
-- Callers may pass the number cut to billing_private.prefix_lengths.longest (0014):
-- no rate has a longer prefix, so the answer is the same with fewer index probes.
-- Cost: customer_ratecards by pk, then ix_rates_ratecard_id_prefix with
-- prefix = ANY(all prefixes of the number) per ratecard.
CREATE OR REPLACE FUNCTION billing_private.find_sell_rate(
    p_customer_id bigint, p_number text, p_at timestamptz)
RETURNS SETOF billing.rates
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.*
      FROM billing.customer_ratecards cr
      CROSS JOIN LATERAL (
            SELECT r.*
              FROM billing.rates r
             WHERE r.ratecard_id = cr.ratecard_id
               AND r.prefix = ANY (billing_private.prefixes(p_number))
               AND NOT r.blocked
               AND (r.valid_from IS NULL OR r.valid_from <= p_at)
               AND (r.valid_to IS NULL OR p_at < r.valid_to)
             ORDER BY length(r.prefix) DESC, r.valid_from DESC NULLS LAST, r.id DESC
             LIMIT 1) r
     WHERE cr.customer_id = p_customer_id
     ORDER BY cr.priority
     LIMIT 1
$$;

-- A provider's cost rate for a number at a moment: the longest valid prefix; between
-- valid rates of that prefix, the latest valid_from, then the highest id (as above).
CREATE OR REPLACE FUNCTION billing_private.find_provider_rate(
    p_provider_id bigint, p_number text, p_at timestamptz)
RETURNS SETOF billing.provider_rates
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.*
      FROM billing.provider_rates r
     WHERE r.provider_id = p_provider_id
       AND r.prefix = ANY (billing_private.prefixes(p_number))
       AND NOT r.blocked
       AND (r.valid_from IS NULL OR r.valid_from <= p_at)
       AND (r.valid_to IS NULL OR p_at < r.valid_to)
     ORDER BY length(r.prefix) DESC, r.valid_from DESC NULLS LAST, r.id DESC
     LIMIT 1
$$;
