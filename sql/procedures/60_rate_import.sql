-- Rate deck import (portal/rateimport/services.py): set-based validation, diff and
-- apply of a deck that the portal has COPYed into the session's temp table
-- pg_temp.rate_import_raw (line integer, then one text column per field, NULL when
-- the field is not mapped). All functions work on that session's temp tables only.
--
-- Order of calls: rate_import_validate -> (no errors) rate_import_stage ->
-- rate_import_diff -> rate_import_apply. The caller wraps them in one transaction
-- (a savepoint): an error anywhere imports nothing.
--
-- Cost: each step is one sequential pass over the staged rows plus, for the diff,
-- the owner's currently valid rates through ix_rates_ratecard_id_prefix /
-- uq_provider_rates_provider_id_prefix_valid_from; no per-row round trips.

-- A timestamptz from text, NULL when the text is not a timestamp (no exception).
CREATE OR REPLACE FUNCTION billing_private.try_timestamptz(p_text text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    IF btrim(p_text) = '' THEN
        RETURN NULL;
    END IF;
    RETURN btrim(p_text)::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- Errors of the staged deck, in line order: (line, column, value, message), at most
-- p_limit of them. A deck without rows is not an error here (the caller says so).
CREATE OR REPLACE FUNCTION billing_private.rate_import_validate(p_effective timestamptz, p_limit integer DEFAULT 100)
RETURNS TABLE (line integer, col text, value text, message text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_effective IS NULL THEN
        RAISE EXCEPTION 'an effective date is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One pass computes every check as a boolean; only the (few) bad rows are then
    -- expanded into one line per problem. Duplicates come from a hash aggregate,
    -- not a sort of the whole deck.
    RETURN QUERY
    WITH cleaned AS (
        SELECT r.line,
               ltrim(btrim(r.prefix), '+') AS prefix, btrim(r.rate) AS rate,
               nullif(btrim(r.connect_fee), '') AS connect_fee, nullif(btrim(r.min_duration), '') AS min_duration,
               nullif(btrim(r.increment), '') AS increment,
               nullif(btrim(r.increment_first), '') AS increment_first, nullif(btrim(r.increment_next), '') AS increment_next,
               nullif(btrim(r.valid_from), '') AS valid_from, nullif(btrim(r.valid_to), '') AS valid_to,
               lower(nullif(btrim(r.blocked), '')) AS blocked, r.destination_name
          FROM pg_temp.rate_import_raw r
    ), checked AS (
        SELECT c.*, billing_private.try_timestamptz(c.valid_from) AS vf, billing_private.try_timestamptz(c.valid_to) AS vt
          FROM cleaned c
    ), flagged AS (
        SELECT k.*,
               (k.prefix IS NULL OR k.prefix !~ '^[0-9]{1,20}$') AS bad_prefix,
               (k.rate IS NULL OR k.rate !~ '^[0-9]{1,8}(\.[0-9]{1,6})?$') AS bad_rate,
               (k.connect_fee IS NOT NULL AND k.connect_fee !~ '^[0-9]{1,8}(\.[0-9]{1,6})?$') AS bad_fee,
               (k.min_duration IS NOT NULL AND k.min_duration !~ '^[0-9]{1,6}$') AS bad_min,
               (k.increment IS NOT NULL AND k.increment !~ '^0*[1-9][0-9]{0,4}/0*[1-9][0-9]{0,4}$') AS bad_inc,
               (k.increment_first IS NOT NULL AND k.increment_first !~ '^0*[1-9][0-9]{0,4}$') AS bad_first,
               (k.increment_next IS NOT NULL AND k.increment_next !~ '^0*[1-9][0-9]{0,4}$') AS bad_next,
               (k.valid_from IS NOT NULL AND k.vf IS NULL) AS bad_vf,
               (k.vf IS NOT NULL AND k.vf < p_effective) AS early_vf,
               (k.valid_to IS NOT NULL AND k.vt IS NULL) AS bad_vt,
               (k.vt IS NOT NULL AND k.vt <= coalesce(k.vf, p_effective)) AS early_vt,
               (k.blocked IS NOT NULL AND k.blocked NOT IN ('yes', 'no', 'y', 'n', 'true', 'false', 't', 'f', '1', '0', 'blocked')) AS bad_blocked,
               (length(k.destination_name) > 200) IS TRUE AS bad_name
          FROM checked k
    ), duplicates AS (
        SELECT d.line, d.prefix, first_value(d.line) OVER (PARTITION BY d.prefix ORDER BY d.line) AS first_line
          FROM cleaned d
         WHERE d.prefix IN (SELECT c.prefix FROM cleaned c GROUP BY c.prefix HAVING count(*) > 1)
    ), problems AS (
        SELECT f.line, e.ord, e.col, e.val, e.msg
          FROM flagged f
         CROSS JOIN LATERAL (VALUES
            (1, 'prefix', f.prefix, 'a prefix is 1 to 20 digits (an optional leading + is dropped)', f.bad_prefix),
            (3, 'rate', f.rate, 'a rate is a decimal number like 0.0125 (at most 6 decimals, no sign)', f.bad_rate),
            (4, 'connect_fee', f.connect_fee, 'a connect fee is a decimal number like 0.05 (at most 6 decimals)', f.bad_fee),
            (5, 'min_duration', f.min_duration, 'a minimum duration is whole seconds (0 to 999999)', f.bad_min),
            (6, 'increment', f.increment, 'an increment is written first/next in seconds, e.g. 60/60 or 30/6', f.bad_inc),
            (7, 'increment_first', f.increment_first, 'the first increment is whole seconds, at least 1', f.bad_first),
            (8, 'increment_next', f.increment_next, 'the next increment is whole seconds, at least 1', f.bad_next),
            (9, 'valid_from', f.valid_from, 'not a date (write YYYY-MM-DD or YYYY-MM-DD HH:MM)', f.bad_vf),
            (10, 'valid_from', f.valid_from, 'starts before the effective date of the import', f.early_vf),
            (11, 'valid_to', f.valid_to, 'not a date (write YYYY-MM-DD or YYYY-MM-DD HH:MM)', f.bad_vt),
            (12, 'valid_to', f.valid_to, 'must be after the start of the rate', f.early_vt),
            (13, 'blocked', f.blocked, 'blocked is one of yes/no, true/false, 1/0', f.bad_blocked),
            (14, 'destination_name', left(f.destination_name, 40), 'a destination name is at most 200 characters', f.bad_name)
         ) AS e(ord, col, val, msg, bad)
         WHERE (f.bad_prefix OR f.bad_rate OR f.bad_fee OR f.bad_min OR f.bad_inc OR f.bad_first OR f.bad_next
                OR f.bad_vf OR f.early_vf OR f.bad_vt OR f.early_vt OR f.bad_blocked OR f.bad_name)
           AND e.bad
        UNION ALL
        SELECT d.line, 2, 'prefix', d.prefix, 'the same prefix is already on line ' || d.first_line
          FROM duplicates d
         WHERE d.line <> d.first_line AND d.prefix ~ '^[0-9]{1,20}$'
    )
    SELECT p.line, p.col, p.val, p.msg FROM problems p ORDER BY p.line, p.ord LIMIT p_limit;
END $$;

-- Typed copy of the validated deck: pg_temp.rate_import_stage. Fields that are not
-- mapped take the defaults (connect fee 0, minimum 0, increments p_first/p_next,
-- valid from the effective date, open-ended, not blocked). Returns the row count.
CREATE OR REPLACE FUNCTION billing_private.rate_import_stage(
    p_effective timestamptz, p_first integer, p_next integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_rows bigint;
BEGIN
    DROP TABLE IF EXISTS pg_temp.rate_import_stage;
    CREATE TEMP TABLE rate_import_stage AS
    SELECT r.line,
           ltrim(btrim(r.prefix), '+') AS prefix,
           btrim(r.rate)::numeric(14, 6) AS rate,
           coalesce(nullif(btrim(r.connect_fee), '')::numeric(14, 6), 0) AS connect_fee,
           coalesce(nullif(btrim(r.min_duration), '')::integer, 0) AS min_duration,
           coalesce(nullif(split_part(btrim(r.increment), '/', 1), '')::integer,
                    nullif(btrim(r.increment_first), '')::integer, p_first) AS increment_first,
           coalesce(nullif(split_part(btrim(r.increment), '/', 2), '')::integer,
                    nullif(btrim(r.increment_next), '')::integer, p_next) AS increment_next,
           coalesce(billing_private.try_timestamptz(r.valid_from), p_effective) AS valid_from,
           billing_private.try_timestamptz(r.valid_to) AS valid_to,
           coalesce(lower(btrim(r.blocked)) IN ('yes', 'y', 'true', 't', '1', 'blocked'), false) AS blocked,
           nullif(btrim(r.destination_name), '') AS destination_name
      FROM pg_temp.rate_import_raw r;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    ANALYZE pg_temp.rate_import_stage;
    RETURN v_rows;
END $$;

-- Classify every prefix of the deck and of the owner's rates valid at p_effective into
-- pg_temp.rate_import_diff (prefix, line, change, old_*, new_*): new, changed,
-- unchanged, removed. Returns the count per change. p_target: 'ratecard' | 'provider'.
CREATE OR REPLACE FUNCTION billing_private.rate_import_diff(
    p_target text, p_owner_id bigint, p_effective timestamptz)
RETURNS TABLE (change text, n bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_table text := CASE p_target WHEN 'ratecard' THEN 'rates' WHEN 'provider' THEN 'provider_rates' END;
    v_owner text := CASE p_target WHEN 'ratecard' THEN 'ratecard_id' WHEN 'provider' THEN 'provider_id' END;
BEGIN
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'unknown import target %', p_target USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DROP TABLE IF EXISTS pg_temp.rate_import_current, pg_temp.rate_import_diff;
    EXECUTE format($q$
        CREATE TEMP TABLE rate_import_current AS
        SELECT DISTINCT ON (prefix) id, prefix::text AS prefix, rate, connect_fee, min_duration,
               increment_first, increment_next, valid_from, valid_to, blocked
          FROM billing.%I
         WHERE %I = $1
           AND (valid_from IS NULL OR valid_from <= $2)
           AND (valid_to IS NULL OR valid_to > $2)
         ORDER BY prefix, valid_from DESC NULLS LAST$q$, v_table, v_owner)
    USING p_owner_id, p_effective;
    ANALYZE pg_temp.rate_import_current;
    CREATE TEMP TABLE rate_import_diff AS
    SELECT coalesce(s.prefix, c.prefix) AS prefix, s.line,
           CASE WHEN c.prefix IS NULL THEN 'new'
                WHEN s.prefix IS NULL THEN 'removed'
                WHEN (s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next, s.blocked, s.valid_to)
                     IS NOT DISTINCT FROM
                     (c.rate, c.connect_fee, c.min_duration, c.increment_first, c.increment_next, c.blocked, c.valid_to)
                THEN 'unchanged'
                ELSE 'changed' END AS change,
           c.rate AS old_rate, s.rate AS new_rate,
           c.increment_first || '/' || c.increment_next AS old_increment,
           s.increment_first || '/' || s.increment_next AS new_increment,
           s.valid_from AS new_valid_from
      FROM pg_temp.rate_import_stage s
      FULL JOIN pg_temp.rate_import_current c ON c.prefix = s.prefix;
    RETURN QUERY SELECT d.change, count(*) FROM pg_temp.rate_import_diff d GROUP BY d.change;
END $$;

-- Apply the diff: close the owner's current rates of changed and removed prefixes
-- (valid_to = start of the new rate, or p_effective for removed ones; a current rate
-- that starts exactly then is replaced), insert new and changed rows, and, when
-- p_weight_id is given, add catalogue destinations for unknown prefixes that have a
-- name in the deck. Refuses (nothing changed) when the owner has rates scheduled to
-- start after p_effective, since the deck could not say how they relate.
CREATE OR REPLACE FUNCTION billing_private.rate_import_apply(
    p_target text, p_owner_id bigint, p_effective timestamptz, p_weight_id bigint DEFAULT NULL)
RETURNS TABLE (change text, n bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_table  text := CASE p_target WHEN 'ratecard' THEN 'rates' WHEN 'provider' THEN 'provider_rates' END;
    v_owner  text := CASE p_target WHEN 'ratecard' THEN 'ratecard_id' WHEN 'provider' THEN 'provider_id' END;
    v_future timestamptz;
    v_rows   bigint;
BEGIN
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'unknown import target %', p_target USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT min(valid_from) FROM billing.%I WHERE %I = $1 AND valid_from > $2', v_table, v_owner)
       INTO v_future USING p_owner_id, p_effective;
    IF v_future IS NOT NULL THEN
        RAISE EXCEPTION 'rates are already scheduled from %; choose an effective date on or after it', v_future
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Current rows that start exactly when their replacement starts are replaced.
    EXECUTE format($q$
        DELETE FROM billing.%I t
         USING pg_temp.rate_import_diff d
         WHERE t.%I = $1 AND t.prefix = d.prefix AND d.change IN ('changed', 'removed')
           AND t.valid_from IS NOT NULL
           AND t.valid_from >= coalesce(d.new_valid_from, $2)
           AND (t.valid_to IS NULL OR t.valid_to > $2)$q$, v_table, v_owner)
    USING p_owner_id, p_effective;
    EXECUTE format($q$
        UPDATE billing.%I t
           SET valid_to = coalesce(d.new_valid_from, $2)
          FROM pg_temp.rate_import_diff d
         WHERE t.%I = $1 AND t.prefix = d.prefix AND d.change IN ('changed', 'removed')
           AND (t.valid_from IS NULL OR t.valid_from <= $2)
           AND (t.valid_to IS NULL OR t.valid_to > coalesce(d.new_valid_from, $2))$q$, v_table, v_owner)
    USING p_owner_id, p_effective;
    EXECUTE format($q$
        INSERT INTO billing.%I (%I, prefix, rate, connect_fee, min_duration, increment_first, increment_next,
                                valid_from, valid_to, blocked)
        SELECT $1, s.prefix, s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next,
               s.valid_from, s.valid_to, s.blocked
          FROM pg_temp.rate_import_stage s
          JOIN pg_temp.rate_import_diff d ON d.prefix = s.prefix
         WHERE d.change IN ('new', 'changed')
         ORDER BY s.prefix$q$, v_table, v_owner)
    USING p_owner_id;
    IF p_weight_id IS NOT NULL THEN
        INSERT INTO billing.destinations (prefix, name, weight_id)
        SELECT s.prefix, s.destination_name, p_weight_id
          FROM pg_temp.rate_import_stage s
         WHERE s.destination_name IS NOT NULL
        ON CONFLICT (prefix) DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        change := 'destinations_added'; n := v_rows;
        RETURN NEXT;
    END IF;
    RETURN QUERY SELECT d.change, count(*) FROM pg_temp.rate_import_diff d GROUP BY d.change;
END $$;
