-- Re-rating: recompute raw CDRs with today's data (rates, customers, providers fixed
-- by an admin) and correct the books. Set-based; docs/billing.md, "Re-rating".
--
-- billing_private.rerate(p_from, p_to, p_customer_id) answers "re-rate every raw CDR
-- that started in [p_from, p_to) (rows without start_stamp: received in it), of one
-- customer or all". billing_private.rerate_fs_cdr(p_fs_cdr_id) does it for one raw CDR
-- and returns its new status.
--
-- What it changes, in the caller's transaction:
--   * billing.cdr rows of those calls (amounts, rates, status) -- a report, not history;
--   * billing.fs_cdr.status / unrated_reason;
--   * billing.ledger: never edited. Per customer, one 'rerate' entry with the
--     difference between what the calls cost now and what billing.cdr said they cost
--     before (for a single call the entry carries its call_uuid). Invariant kept by the
--     trigger and by this function: a customer's 'call' + 'rerate' entries sum to minus
--     the sell_amount of their rated billing.cdr rows.
--   * billing.endpoint_month_spend by the same differences;
--   * billing.balance_events when the correction crosses the low-balance threshold -- for
--     a prepaid customer without one, zero: a re-rate may take a prepaid balance below
--     zero (the correction is booked, never hidden; new calls are then refused until a
--     top-up) and the customer and the dashboard are told (docs/billing.md, "Re-rating").
-- One customer row update per customer (not per call): the ledger trigger updates
-- customers.balance per entry, and a million updates of one row in one transaction
-- would walk an ever longer version chain.
-- Concurrent re-rates are serialised by a transaction advisory lock; live CDR inserts
-- continue (they book other uuids).
-- Cost: ix_fs_cdr_start_stamp (or pk for one row), rate_cdr inlined per row,
-- ix_cdr_uuid per partition (hash join for large sets), updates of changed rows only.

CREATE OR REPLACE FUNCTION billing_private.rerate_selection_booked()
RETURNS TABLE (rerated bigint, adjusted bigint, still_unrated bigint)
LANGUAGE plpgsql VOLATILE
SET jit = off
SET client_min_messages = warning
AS $$
-- Works on pg_temp.billing_rerate (filled by the callers below).
DECLARE
    v_adjusted bigint;
BEGIN
    -- Calls whose cdr row is missing (raw rows loaded with the trigger disabled, e.g. a
    -- bulk import): write it with the new values directly.
    INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, provider_id, gateway, caller_id,
                             destination, sell_prefix, start_stamp, answer_stamp, end_stamp, duration, billsec,
                             billed_seconds, cost_billed_seconds, sell_rate_id, sell_rate, sell_amount,
                             cost_rate_id, cost_rate, cost_amount, margin, hangup_cause, route_seq,
                             status, unrated_reason, held_seconds, overrun_seconds, no_hold, absurd_duration,
                             cost_currency, cost_amount_original, exchange_rate)
    SELECT r.fs_cdr_id, r.uuid, r.customer_id, r.endpoint_id, r.provider_id, r.gateway, f.caller_id_number,
           r.destination, r.sell_prefix, r.cdr_start, r.answer_stamp, r.end_stamp, coalesce(r.duration, 0),
           coalesce(r.billsec, 0), r.billed_seconds, r.cost_billed_seconds, r.sell_rate_id, r.sell_rate,
           r.sell_amount, r.cost_rate_id, r.cost_rate, r.cost_amount, r.sell_amount - r.cost_amount,
           f.hangup_cause, f.billing_route_seq, r.status, r.unrated_reason, r.held_seconds,
           coalesce(r.overrun_seconds, 0), r.no_hold, r.absurd_duration, r.cost_currency,
           r.cost_amount_original, r.exchange_rate
      FROM pg_temp.billing_rerate r
      JOIN billing.fs_cdr f ON f.id = r.fs_cdr_id
     WHERE r.old_cdr_found IS NULL;

    -- Ledger: per customer, new total minus old total.
    DROP TABLE IF EXISTS pg_temp.billing_rerate_delta;
    CREATE TEMP TABLE billing_rerate_delta ON COMMIT DROP AS
    SELECT d.customer_id, sum(d.amount) AS amount, count(DISTINCT d.uuid) AS calls, min(d.uuid) AS uuid
      FROM (SELECT r.customer_id, -r.sell_amount AS amount, r.uuid
              FROM pg_temp.billing_rerate r
             WHERE r.status = 'rated' AND r.sell_amount <> 0 AND r.customer_id IS NOT NULL
            UNION ALL
            SELECT r.old_customer_id, r.old_sell_amount, r.uuid
              FROM pg_temp.billing_rerate r
             WHERE r.old_status = 'rated' AND r.old_sell_amount <> 0 AND r.old_customer_id IS NOT NULL) d
     GROUP BY d.customer_id
    HAVING sum(d.amount) <> 0;

    INSERT INTO billing.ledger (customer_id, kind, amount, call_uuid, note, created_by)
    SELECT d.customer_id, 'rerate', d.amount, CASE WHEN d.calls = 1 THEN d.uuid END,
           'rerate of ' || d.calls || ' call(s)', current_user
      FROM pg_temp.billing_rerate_delta d
     ORDER BY d.customer_id;   -- stable lock order between concurrent writers
    GET DIAGNOSTICS v_adjusted = ROW_COUNT;

    -- Low-balance crossings caused by the correction (balance now includes it).
    INSERT INTO billing.balance_events (customer_id, kind, balance, threshold)
    SELECT c.id, 'low_balance', c.balance, t.threshold
      FROM pg_temp.billing_rerate_delta d
      JOIN billing.customers c ON c.id = d.customer_id
     CROSS JOIN LATERAL (SELECT coalesce(c.low_balance_alert, s.low_balance_default,
                                         CASE WHEN c.billing_type = 'prepaid' THEN 0 END) AS threshold
                           FROM billing.settings s) t
     WHERE d.amount < 0 AND c.balance < t.threshold AND c.balance - d.amount >= t.threshold;

    -- Month spend of endpoints by the same differences.
    INSERT INTO billing.endpoint_month_spend AS ms (endpoint_id, month, amount)
    SELECT d.endpoint_id, d.month, sum(d.amount)
      FROM (SELECT r.endpoint_id, date_trunc('month', r.start_stamp)::date AS month, r.sell_amount AS amount
              FROM pg_temp.billing_rerate r
             WHERE r.status = 'rated' AND r.sell_amount <> 0
            UNION ALL
            SELECT r.old_endpoint_id, date_trunc('month', r.old_start_stamp)::date, -r.old_sell_amount
              FROM pg_temp.billing_rerate r
             WHERE r.old_status = 'rated' AND r.old_sell_amount <> 0) d
      JOIN billing.endpoints e ON e.id = d.endpoint_id
     GROUP BY d.endpoint_id, d.month
    HAVING sum(d.amount) <> 0
    ON CONFLICT (endpoint_id, month) DO UPDATE SET amount = ms.amount + EXCLUDED.amount;

    -- The rated CDRs: update the rows that change.
    UPDATE billing.cdr c
       SET customer_id = r.customer_id, provider_id = r.provider_id, endpoint_id = r.endpoint_id,
           sell_prefix = r.sell_prefix, start_stamp = r.cdr_start,
           billed_seconds = r.billed_seconds, cost_billed_seconds = r.cost_billed_seconds,
           sell_rate_id = r.sell_rate_id, sell_rate = r.sell_rate, sell_amount = r.sell_amount,
           cost_rate_id = r.cost_rate_id, cost_rate = r.cost_rate, cost_amount = r.cost_amount,
           margin = r.sell_amount - r.cost_amount, status = r.status, unrated_reason = r.unrated_reason,
           billsec = coalesce(r.billsec, 0), duration = coalesce(r.duration, 0), end_stamp = r.end_stamp,
           answer_stamp = r.answer_stamp, gateway = r.gateway, destination = r.destination,
           held_seconds = r.held_seconds, overrun_seconds = coalesce(r.overrun_seconds, 0), no_hold = r.no_hold,
           absurd_duration = r.absurd_duration, cost_currency = r.cost_currency,
           cost_amount_original = r.cost_amount_original, exchange_rate = r.exchange_rate, rated_at = now()
      FROM pg_temp.billing_rerate r
     WHERE c.uuid = r.uuid
       AND r.old_cdr_found IS NOT NULL
       AND (c.status, c.unrated_reason, c.customer_id, c.provider_id, c.endpoint_id, c.sell_rate_id, c.cost_rate_id,
            c.sell_amount, c.cost_amount, c.billed_seconds, c.cost_billed_seconds, c.start_stamp, c.sell_rate,
            c.cost_rate, c.billsec, c.duration, c.end_stamp, c.answer_stamp, c.gateway, c.destination, c.sell_prefix,
            c.held_seconds, c.overrun_seconds, c.no_hold, c.absurd_duration,
            c.cost_currency, c.cost_amount_original, c.exchange_rate)
           IS DISTINCT FROM
           (r.status, r.unrated_reason, r.customer_id, r.provider_id, r.endpoint_id, r.sell_rate_id, r.cost_rate_id,
            r.sell_amount::billing.money, r.cost_amount::billing.money, r.billed_seconds, r.cost_billed_seconds,
            r.cdr_start, r.sell_rate, r.cost_rate, coalesce(r.billsec, 0), coalesce(r.duration, 0), r.end_stamp,
            r.answer_stamp, r.gateway, r.destination, r.sell_prefix,
            r.held_seconds, coalesce(r.overrun_seconds, 0), r.no_hold, r.absurd_duration, r.cost_currency,
            r.cost_amount_original::billing.money, r.exchange_rate);

    UPDATE billing.fs_cdr f
       SET status = r.status, unrated_reason = r.unrated_reason
      FROM pg_temp.billing_rerate r
     WHERE f.id = r.fs_cdr_id
       AND (f.status, f.unrated_reason) IS DISTINCT FROM (r.status, r.unrated_reason);

    RETURN QUERY
        SELECT count(*) FILTER (WHERE r.status = 'rated'), v_adjusted, count(*) FILTER (WHERE r.status = 'unrated')
          FROM pg_temp.billing_rerate r;
END $$;

-- Fill pg_temp.billing_rerate from a selection of raw CDRs (a query text with $1..$5 =
-- p_from, p_to, p_customer_id, p_fs_cdr_id, p_provider_id; only the fixed texts below
-- are used).
--
-- Rates are found set-based: every prefix of every number (unnest(prefixes(...)), no
-- longer than billing_private.prefix_lengths.longest) hash-joined to the rates, then
-- per call the first match in (ratecard priority, longest prefix, latest valid_from,
-- highest id) order -- exactly find_sell_rate's rule (and find_provider_rate's,
-- longest prefix of the provider, same tie-break). Per call, the two index lookups of the trigger cost
-- ~75 us of CPU; for a million calls the joins are several times cheaper.
-- The rule that turns rates into amounts and reasons is rate_cdr_with, the trigger's.
CREATE OR REPLACE FUNCTION billing_private.rerate_prepare(
    p_where text, p_from timestamptz, p_to timestamptz, p_customer_id bigint, p_fs_cdr_id bigint,
    p_provider_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET jit = off              -- compiling these plans costs more than running them
SET work_mem = '256MB'     -- hash joins of a million calls stay in memory
SET client_min_messages = warning   -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_rows      bigint;
    v_many      boolean;
    v_indexscan text := current_setting('enable_indexscan');
    v_bitmap    text := current_setting('enable_bitmapscan');
    v_memoize   text := current_setting('enable_memoize');
    -- numbers are cut to the longest prefix in use (0014): same matches, fewer rows
    -- in the prefix joins (6 instead of 11-15 per call in the benchmark data)
    v_longest   integer := coalesce((SELECT pl.longest FROM billing_private.prefix_lengths pl), 20);
    -- the cap of a call without a hold, as in the trigger (CONTRACT 1b)
    v_max_call  integer := (SELECT s.max_call_seconds FROM billing.settings s);
BEGIN
    -- One re-rate at a time: two overlapping ones would both post the same difference.
    PERFORM pg_advisory_xact_lock(1667523698, 0);
    DROP TABLE IF EXISTS pg_temp.billing_rerate_src, pg_temp.billing_rerate_sell, pg_temp.billing_rerate_cost,
                         pg_temp.billing_rerate;
    EXECUTE
        'CREATE TEMP TABLE billing_rerate_src ON COMMIT DROP AS
         SELECT f.id, f.uuid, f.billing_customer_id, f.billing_endpoint_id, f.billing_destination,
                f.start_stamp, f.end_stamp, f.answer_stamp, f.billsec, f.duration, f.billing_provider_id,
                f.billing_reject_reason, f.billing_gateway, f.destination_number, f.received_at, f.held_seconds,
                coalesce(f.billing_reject_reason, '''') <> '''' AND coalesce(f.billsec, 0) = 0 AS rejected
           FROM billing.fs_cdr f
          WHERE ' || p_where
        USING p_from, p_to, p_customer_id, p_fs_cdr_id, p_provider_id;
    ANALYZE pg_temp.billing_rerate_src;

    -- Many calls: hash-join the whole rate tables (one pass over them). The planner
    -- prefers memoized index probes there, which measured 4x slower for 100k calls of
    -- the routing data set (1M rates). Few calls (one CDR from the admin page): index
    -- probes are right. billing.rerate_hash_threshold (default 20000) moves the limit.
    SELECT count(*) INTO v_rows FROM pg_temp.billing_rerate_src;
    v_many := v_rows > coalesce(nullif(current_setting('billing.rerate_hash_threshold', true), '')::bigint, 20000);
    IF v_many THEN
        PERFORM set_config('enable_indexscan', 'off', true),
                set_config('enable_bitmapscan', 'off', true),
                set_config('enable_memoize', 'off', true);
    END IF;

    CREATE TEMP TABLE billing_rerate_sell ON COMMIT DROP AS
    SELECT DISTINCT ON (s.id) s.id AS fs_cdr_id, r.id, r.prefix, r.rate, r.connect_fee, r.min_duration,
           r.increment_first, r.increment_next
      FROM pg_temp.billing_rerate_src s
      JOIN billing.customer_ratecards cr ON cr.customer_id = s.billing_customer_id
     CROSS JOIN LATERAL unnest(billing_private.prefixes(left(s.billing_destination, v_longest))) AS n(prefix)
      JOIN billing.rates r ON r.ratecard_id = cr.ratecard_id AND r.prefix = n.prefix
     WHERE NOT s.rejected
       AND NOT r.blocked
       AND (r.valid_from IS NULL OR r.valid_from <= s.start_stamp)
       AND (r.valid_to IS NULL OR s.start_stamp < r.valid_to)
     ORDER BY s.id, cr.priority, length(r.prefix) DESC, r.valid_from DESC NULLS LAST, r.id DESC;
    CREATE INDEX ON pg_temp.billing_rerate_sell (fs_cdr_id);

    CREATE TEMP TABLE billing_rerate_cost ON COMMIT DROP AS
    SELECT DISTINCT ON (s.id) s.id AS fs_cdr_id, r.id, r.rate, r.connect_fee, r.min_duration,
           r.increment_first, r.increment_next
      FROM pg_temp.billing_rerate_src s
     CROSS JOIN LATERAL unnest(billing_private.prefixes(left(s.billing_destination, v_longest))) AS n(prefix)
      JOIN billing.provider_rates r ON r.provider_id = s.billing_provider_id AND r.prefix = n.prefix
     WHERE NOT s.rejected
       AND NOT r.blocked
       AND (r.valid_from IS NULL OR r.valid_from <= s.start_stamp)
       AND (r.valid_to IS NULL OR s.start_stamp < r.valid_to)
     ORDER BY s.id, length(r.prefix) DESC, r.valid_from DESC NULLS LAST, r.id DESC;
    IF v_many THEN
        PERFORM set_config('enable_indexscan', v_indexscan, true),
                set_config('enable_bitmapscan', v_bitmap, true),
                set_config('enable_memoize', v_memoize, true);
    END IF;
    CREATE INDEX ON pg_temp.billing_rerate_cost (fs_cdr_id);
    ANALYZE pg_temp.billing_rerate_sell;
    ANALYZE pg_temp.billing_rerate_cost;

    CREATE TEMP TABLE billing_rerate ON COMMIT DROP AS
    SELECT f.id AS fs_cdr_id, f.uuid, f.billing_endpoint_id AS endpoint_id, f.start_stamp,
           coalesce(f.start_stamp, f.end_stamp, f.answer_stamp, f.received_at) AS cdr_start,
           f.billsec, f.duration, f.end_stamp, f.answer_stamp, f.billing_gateway AS gateway,
           coalesce(f.billing_destination, f.destination_number) AS destination,
           x.status, x.unrated_reason, x.customer_id, x.provider_id, x.sell_rate_id, x.sell_prefix,
           x.sell_rate, x.billed_seconds, x.sell_amount, x.cost_rate_id, x.cost_rate,
           x.cost_billed_seconds, x.cost_amount, x.overrun_seconds, f.held_seconds,
           coalesce(f.billsec, 0) > 0 AND NOT f.rejected AND f.held_seconds IS NULL AS no_hold,
           coalesce(coalesce(f.billsec, 0) > 0 AND NOT f.rejected AND f.billsec > v_max_call, false) AS absurd_duration,
           x.cost_currency, x.cost_amount_original, x.exchange_rate,
           o.status AS old_status, o.cost_amount AS old_cost_amount, o.customer_id AS old_customer_id,
           o.endpoint_id AS old_endpoint_id,
           o.start_stamp AS old_start_stamp, o.sell_amount AS old_sell_amount, o.fs_cdr_id AS old_cdr_found
      FROM pg_temp.billing_rerate_src f
      LEFT JOIN billing.customers c ON c.id = f.billing_customer_id
      LEFT JOIN billing.providers p ON p.id = f.billing_provider_id
      LEFT JOIN pg_temp.billing_rerate_sell s ON s.fs_cdr_id = f.id
      LEFT JOIN pg_temp.billing_rerate_cost pr ON pr.fs_cdr_id = f.id
      -- looked up only when the provider's currency is not the customer's
      LEFT JOIN LATERAL billing_private.find_exchange_rate(p.currency, c.currency, f.start_stamp) fx ON NOT f.rejected
     CROSS JOIN LATERAL billing_private.rate_cdr_with(
            f.billing_customer_id, c.id, f.billing_destination, f.start_stamp, f.end_stamp, f.billsec,
            f.billing_provider_id, p.id, f.billing_reject_reason, coalesce(f.held_seconds, v_max_call),
            s.id, s.prefix, s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next,
            pr.id, pr.rate, pr.connect_fee, pr.min_duration, pr.increment_first, pr.increment_next,
            c.currency, p.currency, fx.rate) x
      LEFT JOIN billing.cdr o ON o.uuid = f.uuid;
    ANALYZE pg_temp.billing_rerate;
END $$;

-- The raw CDRs of a period [p_from, p_to) (rows without start_stamp: received in it),
-- of one customer and/or one provider or all, into pg_temp.billing_rerate.
CREATE OR REPLACE FUNCTION billing_private.rerate_prepare_period(
    p_from timestamptz, p_to timestamptz, p_customer_id bigint, p_provider_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to <= p_from THEN
        RAISE EXCEPTION 'rerate needs a period with p_from < p_to (got % .. %)', p_from, p_to
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM billing_private.rerate_prepare(
        '((f.start_stamp >= $1 AND f.start_stamp < $2)
           OR (f.start_stamp IS NULL AND f.received_at >= $1 AND f.received_at < $2))
          AND ($3::bigint IS NULL OR f.billing_customer_id = $3)
          AND ($5::bigint IS NULL OR f.billing_provider_id = $5)',
        p_from, p_to, p_customer_id, NULL, p_provider_id);
END $$;

CREATE OR REPLACE FUNCTION billing_private.rerate(
    p_from timestamptz, p_to timestamptz, p_customer_id bigint DEFAULT NULL, p_provider_id bigint DEFAULT NULL)
RETURNS TABLE (rerated bigint, adjusted bigint, still_unrated bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM billing_private.rerate_prepare_period(p_from, p_to, p_customer_id, p_provider_id);
    RETURN QUERY SELECT * FROM billing_private.rerate_selection_booked();
END $$;

-- What a re-rate of that selection would move, per customer, without booking anything
-- (the portal's preview; the caller rolls back or commits, nothing but temp tables is
-- written): the calls, how many change, and the sums of sell and cost (customer's
-- currency) before and after. A call that moves to another customer counts its old
-- amounts for the old customer and its new ones for the new.
CREATE OR REPLACE FUNCTION billing_private.rerate_preview(
    p_from timestamptz, p_to timestamptz, p_customer_id bigint DEFAULT NULL, p_provider_id bigint DEFAULT NULL)
RETURNS TABLE (customer_id bigint, calls bigint, changed bigint, sell_before numeric, sell_after numeric,
               cost_before numeric, cost_after numeric)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM billing_private.rerate_prepare_period(p_from, p_to, p_customer_id, p_provider_id);
    RETURN QUERY
    WITH c AS (
        SELECT r.*, (r.status, r.customer_id, r.sell_amount::billing.money, r.cost_amount::billing.money)
                    IS DISTINCT FROM (r.old_status, r.old_customer_id, r.old_sell_amount, r.old_cost_amount) AS changed
          FROM pg_temp.billing_rerate r)
    SELECT d.customer_id, count(DISTINCT d.uuid), count(DISTINCT d.uuid) FILTER (WHERE d.changed),
           sum(d.sell_before), sum(d.sell_after), sum(d.cost_before), sum(d.cost_after)
      FROM (SELECT r.customer_id, r.uuid, r.changed, 0::numeric AS sell_before, r.sell_amount AS sell_after,
                   0::numeric AS cost_before, r.cost_amount AS cost_after
              FROM c r
            UNION ALL
            SELECT r.old_customer_id, r.uuid, r.changed, r.old_sell_amount, 0, r.old_cost_amount, 0
              FROM c r
             WHERE r.old_cdr_found IS NOT NULL) d
     GROUP BY d.customer_id
     ORDER BY d.customer_id NULLS LAST;
END $$;

CREATE OR REPLACE FUNCTION billing_private.rerate_fs_cdr(p_fs_cdr_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
    v_status text;
BEGIN
    PERFORM billing_private.rerate_prepare('f.id = $4', NULL, NULL, NULL, p_fs_cdr_id, NULL);
    PERFORM billing_private.rerate_selection_booked();
    SELECT f.status INTO v_status FROM billing.fs_cdr f WHERE f.id = p_fs_cdr_id;
    IF v_status IS NULL THEN
        RAISE EXCEPTION 'no raw CDR with id %', p_fs_cdr_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_status;
END $$;
