-- Periodic billing maintenance, run by `flask --app wsgi billing sweep-holds` and the
-- jobs scheduler (every minute is fine: each is cheap when there is nothing to do).

-- sweep_stale_holds(): release holds of calls whose CDR never came (a switch that
-- crashed or lost its database connection mid-call). route_call sets expires_at to
-- the call's max_duration plus settings.hold_grace_seconds after set-up, so a hold past
-- expires_at belongs to a call that cannot still be running.
-- Returns the number of holds released. Cost: ix_call_holds_expires_at range scan.
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

-- refresh_gateway_stats(): recompute every gateway's decayed counters from the rated
-- CDRs of the last 24 hours (same half-life of one hour as the trigger's running
-- update, see billing_private.stats_decay), repairing any drift and decaying idle
-- gateways. Gateways without traffic in the window keep counters decayed to ~0 and
-- asr/acd NULL ("unknown", routing treats them as neutral).
-- Returns the number of gateway_stats rows written.
-- Cost: ix_cdr_start_stamp range scan of one day, grouped by gateway name.
CREATE OR REPLACE FUNCTION billing_private.refresh_gateway_stats()
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_rows integer;
BEGIN
    WITH recent AS (
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
