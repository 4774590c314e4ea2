-- Periodic billing maintenance, run by `flask --app wsgi billing sweep-holds` and the
-- jobs scheduler (every minute is fine: each is cheap when there is nothing to do).

-- sweep_stale_holds(): release holds of calls whose CDR never came (a switch that
-- crashed or lost its database connection mid-call). route_call sets expires_at to
-- the call's max_duration plus settings.hold_grace_seconds after set-up, so a hold past
-- expires_at belongs to a call that cannot still be running.
-- Returns the number of holds released. Cost: a scan of call_holds (calls in progress only; migration 0013 dropped its expires_at index).
CREATE OR REPLACE FUNCTION billing_private.sweep_stale_holds()
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_released integer;
BEGIN
    DELETE FROM billing.call_holds h WHERE h.expires_at < now();
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN v_released;
END $$;

-- fold_gateway_stats(): add the gateway samples written by CDR billing since the last
-- fold (billing_private.gateway_samples, 0025) to billing.gateway_stats. The counters
-- are exponentially decayed sums (half-life one hour, billing_private.stats_decay):
-- the stored ones decay from their updated_at to now, each sample from its
-- recorded_at to now, then they add up -- the same sums as adding every CDR as it
-- came. ASR = answered / calls, ACD = billsec / answered (NULL before the first
-- answered call), to 6 decimals. The samples are taken by DELETE ... RETURNING, so
-- each is folded exactly once, even by two folds at once; a CDR still uncommitted is
-- left for the next fold. Samples of a gateway that no longer exists are dropped.
-- Returns the number of gateways updated. Cost: a scan of the samples of the last
-- interval (one per CDR since the last fold), one upsert per gateway.
CREATE OR REPLACE FUNCTION billing_private.fold_gateway_stats()
RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_rows integer;
BEGIN
    WITH taken AS (
        DELETE FROM billing_private.gateway_samples RETURNING gateway, answered, billsec, recorded_at),
    folded AS (
        SELECT g.id AS gateway_id,
               sum(billing_private.stats_decay(t.recorded_at)) AS calls,
               coalesce(sum(billing_private.stats_decay(t.recorded_at)) FILTER (WHERE t.answered), 0) AS answered,
               coalesce(sum(billing_private.stats_decay(t.recorded_at) * t.billsec) FILTER (WHERE t.answered), 0)
                   AS billsec
          FROM taken t
          JOIN billing.gateways g ON g.name = t.gateway
         GROUP BY g.id)
    INSERT INTO billing.gateway_stats AS gs (gateway_id, calls, answered, billsec, asr, acd, updated_at)
    SELECT f.gateway_id, round(f.calls, 6), round(f.answered, 6), round(f.billsec, 6),
           round(f.answered / f.calls, 6), round(f.billsec / nullif(f.answered, 0), 6), now()
      FROM folded f
    ON CONFLICT (gateway_id) DO UPDATE SET
        calls    = round(gs.calls * billing_private.stats_decay(gs.updated_at) + EXCLUDED.calls, 6),
        answered = round(gs.answered * billing_private.stats_decay(gs.updated_at) + EXCLUDED.answered, 6),
        billsec  = round(gs.billsec * billing_private.stats_decay(gs.updated_at) + EXCLUDED.billsec, 6),
        asr      = round((gs.answered * billing_private.stats_decay(gs.updated_at) + EXCLUDED.answered)
                         / nullif(gs.calls * billing_private.stats_decay(gs.updated_at) + EXCLUDED.calls, 0), 6),
        acd      = round((gs.billsec * billing_private.stats_decay(gs.updated_at) + EXCLUDED.billsec)
                         / nullif(gs.answered * billing_private.stats_decay(gs.updated_at) + EXCLUDED.answered, 0), 6),
        updated_at = greatest(gs.updated_at, now());
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $$;

-- refresh_gateway_stats(): recompute every gateway's decayed counters from the rated
-- CDRs of the last 24 hours (same half-life of one hour as fold_gateway_stats, see
-- billing_private.stats_decay), repairing any drift and decaying idle
-- gateways. Gateways without traffic in the window keep counters decayed to ~0 and
-- asr/acd NULL ("unknown", routing treats them as neutral).
-- It also drops the samples waiting for fold_gateway_stats(), which the recompute
-- already counts.
-- Returns the number of gateway_stats rows written.
-- Cost: ix_cdr_start_stamp_id range scan of one day, grouped by gateway name.
CREATE OR REPLACE FUNCTION billing_private.refresh_gateway_stats()
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_rows integer;
BEGIN
    -- The pending samples are dropped in the same statement (same snapshot): the CDRs
    -- they belong to are among the rated CDRs counted here; the samples of CDRs that
    -- commit later are not visible to it, stay, and are folded next time.
    WITH dropped AS (
        DELETE FROM billing_private.gateway_samples),
    recent AS (
        SELECT c.gateway,
               sum(billing_private.stats_decay(coalesce(c.end_stamp, c.start_stamp))) AS calls,
               sum(billing_private.stats_decay(coalesce(c.end_stamp, c.start_stamp)))
                   FILTER (WHERE c.billsec > 0) AS answered,
               sum(billing_private.stats_decay(coalesce(c.end_stamp, c.start_stamp)) * c.billsec)
                   FILTER (WHERE c.billsec > 0) AS billsec
          FROM billing.cdr c
         WHERE c.start_stamp >= now() - interval '24 hours'
           AND c.gateway IS NOT NULL
         GROUP BY c.gateway),
    stats AS (
        SELECT g.id AS gateway_id,
               round(coalesce(r.calls, 0), 6) AS calls,
               round(coalesce(r.answered, 0), 6) AS answered,
               round(coalesce(r.billsec, 0), 6) AS billsec
          FROM billing.gateways g
          LEFT JOIN recent r ON r.gateway = g.name)
    INSERT INTO billing.gateway_stats AS gs (gateway_id, calls, answered, billsec, asr, acd, updated_at)
    SELECT s.gateway_id, s.calls, s.answered, s.billsec,
           round(s.answered / nullif(s.calls, 0), 6),
           round(s.billsec / nullif(s.answered, 0), 6),
           now()
      FROM stats s
    ON CONFLICT (gateway_id) DO UPDATE SET
        calls = EXCLUDED.calls, answered = EXCLUDED.answered, billsec = EXCLUDED.billsec,
        asr = EXCLUDED.asr, acd = EXCLUDED.acd, updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $$;

-- create_cdr_partition(p_month): the billing.cdr partition of one month, created even
-- when the default partition already holds rows of that month (calls with a clock far
-- off, or a month whose partition was missed): those rows are moved into the new
-- partition, which is then attached -- a plain CREATE ... PARTITION OF would fail
-- and, from then on, so would every run of ensure_cdr_partitions.
-- Returns true when it created the partition. Takes a brief ACCESS EXCLUSIVE lock on
-- billing.cdr_default only in the moving case.
-- The partition is created with fillfactor 50 (0023: room for one re-rate of every call
-- as HOT updates, ~2x the heap size), or `billing.cdr_fillfactor` when set (10-100).
CREATE OR REPLACE FUNCTION billing_private.create_cdr_partition(p_month date)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
    v_from date := date_trunc('month', p_month)::date;
    v_to   date := (date_trunc('month', p_month) + interval '1 month')::date;
    v_name text := 'cdr_' || to_char(p_month, 'YYYY_MM');
    v_fill integer := coalesce(nullif(current_setting('billing.cdr_fillfactor', true), '')::integer, 50);
BEGIN
    IF v_fill NOT BETWEEN 10 AND 100 THEN
        RAISE EXCEPTION 'billing.cdr_fillfactor must be between 10 and 100 (got %)', v_fill
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass('billing.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM billing.cdr_default d WHERE d.start_stamp >= v_from AND d.start_stamp < v_to) THEN
        EXECUTE format('CREATE TABLE billing.%I PARTITION OF billing.cdr FOR VALUES FROM (%L) TO (%L) '
                       'WITH (fillfactor = %s)', v_name, v_from, v_to, v_fill);
        RETURN true;
    END IF;
    LOCK TABLE billing.cdr_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE billing.%I (LIKE billing.cdr INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
                   'WITH (fillfactor = %s)', v_name, v_fill);
    EXECUTE format('WITH moved AS (DELETE FROM billing.cdr_default WHERE start_stamp >= %L AND start_stamp < %L '
                   'RETURNING *) INSERT INTO billing.%I SELECT * FROM moved', v_from, v_to, v_name);
    EXECUTE format('ALTER TABLE billing.cdr ATTACH PARTITION billing.%I FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_from, v_to);
    RETURN true;
END $$;

-- ensure_cdr_partitions(p_months_ahead): partitions from last month to p_months_ahead
-- months ahead (same signature and result as the version in migration 0001, made
-- robust through create_cdr_partition). Returns the number created.
CREATE OR REPLACE FUNCTION billing_private.ensure_cdr_partitions(p_months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_month   date := date_trunc('month', now())::date - interval '1 month';
    v_created integer := 0;
BEGIN
    FOR i IN 0 .. p_months_ahead + 1 LOOP
        IF billing_private.create_cdr_partition(v_month) THEN
            v_created := v_created + 1;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
    RETURN v_created;
END $$;
