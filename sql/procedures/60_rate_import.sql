-- Rate deck import (portal/rateimport/services.py): set-based checks, diff and apply
-- of a deck that the portal has checked line by line while reading it and COPYed,
-- typed, into the session's temp table pg_temp.rate_import_stage. All functions work
-- on that session's temp tables only.
--
-- Order of calls: rate_import_validate -> (no errors) rate_import_diff ->
-- rate_import_apply. The caller wraps them in one transaction (a savepoint): an
-- error anywhere imports nothing.
--
-- Two modes (docs/operations.md): 'update' (the default) touches only the prefixes in
-- the deck; the owner's other current rates are 'kept' as they are. 'replace' takes
-- the deck as the complete list: the other prefixes are 'removed' (closed at the
-- effective date). Both modes do the same passes over the same rows.
--
-- Cost: each step is one sequential pass over the staged rows plus, for the diff,
-- the owner's currently valid rates through ix_rates_ratecard_id_prefix /
-- uq_provider_rates_provider_id_prefix_valid_from; no per-row round trips.

-- Superseded by the typed staging below (format checks moved to the reader), and by
-- the mode argument of diff and apply.
DROP FUNCTION IF EXISTS billing_private.rate_import_diff(text, bigint, timestamptz);
DROP FUNCTION IF EXISTS billing_private.rate_import_apply(text, bigint, timestamptz, bigint);
DROP FUNCTION IF EXISTS billing_private.rate_import_validate(timestamptz, integer);
DROP FUNCTION IF EXISTS billing_private.rate_import_stage(timestamptz, integer, integer);
DROP FUNCTION IF EXISTS billing_private.try_timestamptz(text);

-- The checks of a staged deck that need the database, in line order: (line, column,
-- value, message), at most p_limit. The portal has already checked every field's
-- format while reading the file and COPYed the typed rows into
-- pg_temp.rate_import_stage (line, prefix, rate, connect_fee, min_duration,
-- increment_first, increment_next, valid_from, valid_to, blocked, destination_name),
-- valid_from defaulting to the effective date. Checked here: a prefix twice in the
-- deck (hash aggregate, then only the duplicated prefixes are ranked) and, when the
-- deck has date columns (p_check_dates), rates starting before the effective date or
-- ending before they start.
CREATE OR REPLACE FUNCTION billing_private.rate_import_validate(
    p_effective timestamptz, p_check_dates boolean, p_limit integer DEFAULT 100)
RETURNS TABLE (line integer, col text, value text, message text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_effective IS NULL THEN
        RAISE EXCEPTION 'an effective date is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY
    WITH duplicated AS (
        SELECT s.prefix FROM pg_temp.rate_import_stage s GROUP BY s.prefix HAVING count(*) > 1
    ), duplicates AS (
        SELECT s.line, s.prefix, first_value(s.line) OVER (PARTITION BY s.prefix ORDER BY s.line) AS first_line
          FROM pg_temp.rate_import_stage s
         WHERE s.prefix IN (SELECT d.prefix FROM duplicated d)
    ), problems AS (
        SELECT d.line, 1 AS ord, 'prefix' AS col, d.prefix AS val, 'the same prefix is already on line ' || d.first_line AS msg
          FROM duplicates d
         WHERE d.line <> d.first_line
        UNION ALL
        SELECT s.line, 2, 'valid_from', s.valid_from::text, 'starts before the effective date of the import'
          FROM pg_temp.rate_import_stage s
         WHERE p_check_dates AND s.valid_from < p_effective
        UNION ALL
        SELECT s.line, 3, 'valid_to', s.valid_to::text, 'must be after the start of the rate'
          FROM pg_temp.rate_import_stage s
         WHERE p_check_dates AND s.valid_to <= s.valid_from
    )
    SELECT p.line, p.col, p.val, p.msg FROM problems p ORDER BY p.line, p.ord LIMIT p_limit;
END $$;

-- Classify every prefix of the deck and of the owner's rates valid at p_effective into
-- pg_temp.rate_import_diff (prefix, line, change, old_*, new_*): new, changed,
-- unchanged, and for the owner's prefixes absent from the deck 'kept' (p_mode
-- 'update') or 'removed' (p_mode 'replace'). Returns the count per change.
-- p_target: 'ratecard' | 'provider'.
CREATE OR REPLACE FUNCTION billing_private.rate_import_diff(
    p_target text, p_owner_id bigint, p_effective timestamptz, p_mode text)
RETURNS TABLE (change text, n bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_table text := CASE p_target WHEN 'ratecard' THEN 'rates' WHEN 'provider' THEN 'provider_rates' END;
    v_owner text := CASE p_target WHEN 'ratecard' THEN 'ratecard_id' WHEN 'provider' THEN 'provider_id' END;
BEGIN
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'unknown import target %', p_target USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_mode IS NULL OR p_mode NOT IN ('update', 'replace') THEN
        RAISE EXCEPTION 'unknown import mode % (update or replace)', p_mode USING ERRCODE = 'invalid_parameter_value';
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
                WHEN s.prefix IS NULL THEN CASE p_mode WHEN 'replace' THEN 'removed' ELSE 'kept' END
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
-- name in the deck. 'kept' prefixes (update mode) are not touched. Refuses (nothing
-- changed) when rates are scheduled to start after p_effective (of the deck's
-- prefixes in update mode, of any prefix in replace mode), since the deck could not
-- say how they relate.
CREATE OR REPLACE FUNCTION billing_private.rate_import_apply(
    p_target text, p_owner_id bigint, p_effective timestamptz, p_mode text, p_weight_id bigint DEFAULT NULL)
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
    IF p_mode IS NULL OR p_mode NOT IN ('update', 'replace') THEN
        RAISE EXCEPTION 'unknown import mode % (update or replace)', p_mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_mode = 'replace' THEN
        EXECUTE format('SELECT min(valid_from) FROM billing.%I WHERE %I = $1 AND valid_from > $2', v_table, v_owner)
           INTO v_future USING p_owner_id, p_effective;
    ELSE
        EXECUTE format($q$
            SELECT min(t.valid_from) FROM billing.%I t
             WHERE t.%I = $1 AND t.valid_from > $2
               AND t.prefix IN (SELECT s.prefix FROM pg_temp.rate_import_stage s)$q$, v_table, v_owner)
           INTO v_future USING p_owner_id, p_effective;
    END IF;
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
