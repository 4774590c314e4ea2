-- Call set-up (CONTRACT 1 of DESIGN.md): who calls, may they, through which carriers,
-- in one round trip. Operator documentation: docs/routing.md; figures and plans:
-- docs/performance-route.md.
--
-- billing.route_call(p_call_uuid, p_source_ip, p_sip_user, p_caller_id, p_destination)
--   One row per route when ok (route_seq 1..N, at most 10, failover order), else exactly
--   one row with ok = false, a reason and a FreeSWITCH hangup cause. Places (or
--   replaces) the hold of p_call_uuid when ok. Never raises on bad input.
--   Credit in quotas (CONTRACT 1b): the hold covers granted_seconds -- max_duration when
--   that fits in one quota (settings.quota_seconds), else the quota rounded up to the
--   rate's increments -- and costs their charge; the switch asks billing.reauthorize_call
--   for more before they run out. Its expiry allows every route to ring for
--   settings.ring_timeout_seconds, then the grant, then settings.hold_grace_seconds.
--   A uuid whose CDR is already in (a route_call that arrives after its call ended) gets
--   no hold: reason call_ended.
-- billing.route_preview(same arguments)
--   The same rows without placing a hold and without locking (routing simulator).
-- billing.reauthorize_call(p_call_uuid, p_answered_seconds)
--   Another quota for a call in progress, if the funds (less every other hold) allow.
-- billing.release_call(p_call_uuid)
--   Drops the hold of a call that ended before its set-up answer was used (route.lua's
--   worker, lib/route_worker.lua, when its call gave up waiting).
--
-- Reasons, checked in this order (the first that applies wins):
--   invalid_number, unknown_source, account_disabled, unknown_destination,
--   destination_not_allowed, no_rate, too_many_calls, spend_limit,
--   insufficient_funds, negative_margin, no_route.
--
-- Cost per call: nine statements, one write (docs/performance-route.md has the plans).
--   1. endpoint id: uq_endpoints_username (SIP), or ix_endpoints_ip_host (0012,
--      btree: an enabled endpoint of exactly the source host) and only when there is
--      none ix_endpoints_ip (GiST inet_ops, >>=, longest masklen); then the endpoint,
--      its customer (primary keys), the settings row and
--      billing_private.prefix_lengths (0014: the longest prefix in use);
--   2. destination + permission: uq_destinations_prefix probed with the prefixes of
--      the number no longer than the longest prefix in use (`prefix = ANY(prefixes)`,
--      6 probes for an 11-digit number when prefixes have at most 6 digits), pk of
--      permission_weights;
--   3. sell rate: billing_private.find_sell_rate given the number cut to that length
--      (ix_rates_ratecard_id_prefix per ratecard in priority order);
--   3b. only when a routable provider bills in another currency than the customer
--      (prefix_lengths.route_currencies, read by statement 1; 0110): one exchange
--      rate per currency in use (uq_exchange_rates_pair_valid_from, one probe each),
--      and each candidate rate converted, its factor found by two array subscripts
--      (prefix_lengths.route_currency_slots: provider id -> currency). A customer in
--      the only currency in use pays ~34,000 instructions (1.1 %) for currencies;
--      with one provider in five in another currency, ~166,000 (5.3 %)
--      (docs/performance-route.md);
--   4. routes: ix_provider_rates_prefix_covering (0011), one index-only scan for all
--      providers (about 60 rows), joined to billing_private.route_gateways (0015:
--      ~100 rows, enabled gateways of enabled providers, hashed), gateway_stats
--      only for the quality and reliability strategies,
--      uq_routing_rules_customer_id_prefix; top-10 sort;
--   5. (route_call only) the customer row locked FOR NO KEY UPDATE;
--   6. billing_private.route_holds: ix_call_holds_customer_id (rows = calls in
--      progress), endpoint_month_spend pk only for endpoints with a spend limit;
--   7. (route_call only) INSERT .. ON CONFLICT into call_holds (0013: no foreign
--      keys, three indexes);
--   8. the rows, from the array of at most 10 routes (RETURN QUERY).
-- Longest prefix by btree `= ANY(all prefixes)` was measured against the `prefix`
-- extension's prefix_range GiST and kept: 2.5-5x faster on the provider rates, within
-- 15 % on the destination catalogue, and no extension to install.
--
-- Concurrency: the customer row is locked (FOR NO KEY UPDATE) only around counting the
-- holds, checking the funds and writing the hold, so two calls of one customer can
-- never both take the last money or the last call slot; routes are ranked before.
-- Before it, the call's uuid is locked (transaction advisory lock, the key CDR billing
-- uses) and its CDR looked for (uq_fs_cdr_uuid): a late route_call and the call's CDR
-- cannot interleave.
-- The lock does not block CDR inserts (they take KEY SHARE) but does serialise with
-- the ledger trigger's balance update, which is what makes the funds check exact.

-- The calls in progress (holds) of a customer and of one of its endpoints, leaving out
-- the hold of p_call_uuid (a call routed again replaces its own hold), and, when
-- asked, what the endpoint spent in p_month. One scan of the customer's holds counts
-- both: an endpoint's holds are among its customer's.
-- Its own function because these two tables grow and shrink all day: plans are
-- generic and live as long as the connection, and one made while call_holds was
-- nearly empty would keep a sequential scan while thousands of holds pile up (it
-- doubled the cost of a call in the benchmark). Sequential scans are ruled out here
-- and only here (the small configuration tables of route_decide are best scanned).
-- Cost: ix_call_holds_customer_id (rows = the customer's calls in progress),
-- pk_endpoint_month_spend.
CREATE OR REPLACE FUNCTION billing_private.route_holds(
    p_customer_id  bigint,
    p_endpoint_id  bigint,
    p_call_uuid    text,
    p_month_spend  boolean,
    p_month        date,
    OUT calls                 integer,
    OUT held                  numeric,
    OUT endpoint_calls        integer,
    OUT endpoint_held         numeric,
    OUT endpoint_month_spend  numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
BEGIN
    SELECT count(*)::integer, coalesce(sum(h.amount), 0),
           count(*) FILTER (WHERE h.endpoint_id = p_endpoint_id)::integer,
           coalesce(sum(h.amount) FILTER (WHERE h.endpoint_id = p_endpoint_id), 0)
      INTO calls, held, endpoint_calls, endpoint_held
      FROM billing.call_holds h
     WHERE h.customer_id = p_customer_id AND h.call_uuid IS DISTINCT FROM p_call_uuid;
    endpoint_month_spend := 0;
    IF p_month_spend THEN
        SELECT coalesce(sum(s.amount), 0) INTO endpoint_month_spend
          FROM billing.endpoint_month_spend s
         WHERE s.endpoint_id = p_endpoint_id AND s.month = p_month;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION billing_private.route_decide(
    p_call_uuid   text,
    p_source_ip   inet,
    p_sip_user    text,
    p_caller_id   text,
    p_destination text,
    p_place_hold  boolean)
RETURNS TABLE (
    ok            boolean,
    reason        text,
    hangup_cause  text,
    customer_id   bigint,
    endpoint_id   bigint,
    destination   text,
    sell_prefix   text,
    sell_rate     numeric,
    max_duration  integer,
    route_seq     integer,
    gateway       text,
    dial_string   text,
    provider_id   bigint,
    cost_rate     numeric,
    granted_seconds integer)
LANGUAGE plpgsql VOLATILE
-- At most 10 routes (docs/routing.md). Without ROWS the planner assumes 1,000 rows per
-- set-returning function, and route.lua's statement (route_call joined with
-- route_options, sorted) was estimated at 1,000,000 rows, over jit_above_cost: every
-- call set-up then JIT-compiled its plan, several ms of server CPU (tests/lua/test_plan_cost.py).
ROWS 10
SET search_path = pg_catalog, pg_temp
-- The plans of the statements below do not depend on the values; planning them
-- again for each call (the custom plans plpgsql tries first) would double its cost.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_now          timestamptz := now();
    v_ep           record;      -- the endpoint, its customer's columns, settings
    v_balance      numeric;
    v_credit_limit numeric;
    v_max_calls    integer;
    v_allowed      boolean;
    v_number       text;
    v_probe        text;        -- the number cut to the longest prefix in use
    v_prefixes     text[];
    v_weight_id    bigint;
    v_rate         billing.rates;
    v_candidates   integer;
    v_routes       billing_private.route_candidate[];
    v_calls        integer;
    v_held         numeric;
    v_ep_calls     integer;
    v_ep_held      numeric;
    v_room         numeric;
    v_spend_room   numeric;
    v_month_spend  numeric;
    v_max          integer;
    v_granted      integer;
    v_endpoint_id  bigint;
    v_seed         bigint := (random() * 2147483647)::bigint;  -- `equal`: drawn per call
    -- Scalars for the ranking query: a record field used in a query is fetched (and
    -- its tuple deformed) each time a row evaluates it; a scalar is read once.
    v_customer_id  bigint;
    v_sell_rate_u  bigint;
    v_allow_negative boolean;
    v_strategy     integer;     -- 1 cost, 2 quality, 3 reliability, 4 equal, 5 priority
    v_convert      boolean;     -- a routable provider bills in another currency (0110)
    v_fx_slot      integer[];   -- then: by provider id, its currency's slot (prefix_lengths)
    v_fx_factor    numeric[];   -- by slot: 10^6 x the factor into the customer's currency
                                -- (1 or the exchange rate valid now; NULL: none)
BEGIN
    ok := false;

    -- 1. invalid_number: before anything reads a table.
    IF p_destination IS NULL OR p_destination !~ '^\+?[0-9]{1,20}$' THEN
        reason := 'invalid_number'; hangup_cause := 'INVALID_NUMBER_FORMAT';
        RETURN NEXT; RETURN;
    END IF;

    -- 2. unknown_source. A call FreeSWITCH cannot name cannot carry a hold, so
    -- route_call refuses it like an unidentified source (the preview needs no uuid).
    IF p_place_hold AND (p_call_uuid IS NULL OR btrim(p_call_uuid) = '' OR length(p_call_uuid) > 255) THEN
        reason := 'unknown_source'; hangup_cause := 'CALL_REJECTED';
        RETURN NEXT; RETURN;
    END IF;
    -- SIP user when given (no fall-back to the IP: an authenticated user who is not
    -- ours is refused); else the longest CIDR containing the source IP, an enabled
    -- endpoint before a disabled one, so a disabled endpoint only answers when it is
    -- the sole match (then account_disabled, which says more than unknown_source).
    IF nullif(p_sip_user, '') IS NOT NULL THEN
        SELECT e.id INTO v_endpoint_id
          FROM billing.endpoints e
         WHERE e.username = p_sip_user AND e.auth = 'sip';
    ELSIF p_source_ip IS NOT NULL THEN
        -- An enabled endpoint of exactly this host is the longest CIDR there can be
        -- (btree ix_endpoints_ip_host); otherwise the GiST search.
        SELECT e.id INTO v_endpoint_id
          FROM billing.endpoints e
         WHERE e.auth = 'ip' AND e.enabled
           AND e.ip = set_masklen(p_source_ip, CASE family(p_source_ip) WHEN 4 THEN 32 ELSE 128 END)::cidr
         ORDER BY e.id
         LIMIT 1;
        IF v_endpoint_id IS NULL THEN
            SELECT e.id INTO v_endpoint_id
              FROM billing.endpoints e
             WHERE e.auth = 'ip' AND e.ip >>= p_source_ip
             ORDER BY e.enabled DESC, masklen(e.ip) DESC, e.id
             LIMIT 1;
        END IF;
    END IF;
    IF v_endpoint_id IS NULL THEN
        reason := 'unknown_source'; hangup_cause := 'CALL_REJECTED';
        RETURN NEXT; RETURN;
    END IF;
    -- The endpoint, its customer, the settings and the longest prefix in use (0014)
    -- in one statement.
    SELECT e.id, e.customer_id, e.enabled, e.permission_id, e.max_calls, e.strip_digits,
           e.add_prefix, e.spend_limit_month, c.enabled AS customer_enabled, c.balance, c.credit_limit,
           c.max_calls AS customer_max_calls, c.allow_negative_margin, c.lcr_strategy,
           s.max_call_seconds, s.hold_grace_seconds, s.quota_seconds, s.ring_timeout_seconds,
           coalesce(pl.longest, 20) AS longest_prefix,
           c.currency, coalesce(pl.route_currencies <> ARRAY[c.currency::text], true) AS needs_fx
      INTO v_ep
      FROM billing.endpoints e
      JOIN billing.customers c ON c.id = e.customer_id
      LEFT JOIN billing.settings s ON s.id
      LEFT JOIN billing_private.prefix_lengths pl ON pl.id
     WHERE e.id = v_endpoint_id;
    customer_id := v_ep.customer_id;
    endpoint_id := v_ep.id;

    v_balance := v_ep.balance;
    v_credit_limit := v_ep.credit_limit;
    v_max_calls := v_ep.customer_max_calls;

    -- 3. account_disabled
    IF NOT v_ep.customer_enabled OR NOT v_ep.enabled THEN
        reason := 'account_disabled'; hangup_cause := 'CALL_REJECTED';
        RETURN NEXT; RETURN;
    END IF;

    -- 4. unknown_destination, on the canonical number: '+' dropped, then the
    -- endpoint's strip_digits and add_prefix. Every longest-prefix lookup below probes
    -- only the prefixes no longer than the longest prefix in use (the prefixes of
    -- v_probe): the same answers as all prefixes of the number, fewer index probes.
    v_number := v_ep.add_prefix
             || substr(CASE WHEN left(p_destination, 1) = '+' THEN substr(p_destination, 2) ELSE p_destination END,
                       v_ep.strip_digits + 1);
    destination := v_number;
    v_probe := left(v_number, v_ep.longest_prefix);
    v_prefixes := billing_private.prefixes(v_probe);
    SELECT d.weight_id,
           EXISTS (SELECT FROM billing.permission_weights pw
                    WHERE pw.permission_id = v_ep.permission_id AND pw.weight_id = d.weight_id)
      INTO v_weight_id, v_allowed
      FROM billing.destinations d
     WHERE d.prefix = ANY (v_prefixes)
     ORDER BY length(d.prefix) DESC
     LIMIT 1;
    IF v_weight_id IS NULL THEN
        reason := 'unknown_destination'; hangup_cause := 'NO_ROUTE_DESTINATION';
        RETURN NEXT; RETURN;
    END IF;

    -- 5. destination_not_allowed
    IF NOT v_allowed THEN
        reason := 'destination_not_allowed'; hangup_cause := 'OUTGOING_CALL_BARRED';
        RETURN NEXT; RETURN;
    END IF;

    -- 6. no_rate (the rating rule's own function, given the cut number)
    SELECT * INTO v_rate FROM billing_private.find_sell_rate(v_ep.customer_id, v_probe, v_now);
    IF v_rate.id IS NULL THEN
        reason := 'no_rate'; hangup_cause := 'NO_ROUTE_DESTINATION';
        RETURN NEXT; RETURN;
    END IF;
    sell_prefix := v_rate.prefix;
    sell_rate := v_rate.rate;
    v_customer_id := v_ep.customer_id;
    v_sell_rate_u := (v_rate.rate * 1000000)::bigint;
    v_allow_negative := v_ep.allow_negative_margin;
    v_strategy := CASE v_ep.lcr_strategy WHEN 'cost' THEN 1 WHEN 'quality' THEN 2 WHEN 'reliability' THEN 3
                                         WHEN 'equal' THEN 4 ELSE 5 END;
    v_convert := v_ep.needs_fx;
    IF v_convert THEN
        -- Each routable currency's factor into the customer's currency, times 10^6 (the
        -- ranking's unit): 1 for the same currency, else the exchange rate valid now
        -- (find_exchange_rate, 12_exchange_rates.sql), NULL without one: the routes of
        -- its providers are then not offered. One lookup per currency, not per provider.
        SELECT pl.route_currency_slots,
               ARRAY(SELECT CASE WHEN u.currency = v_ep.currency::text THEN 1000000
                                 ELSE (SELECT x.rate * 1000000
                                         FROM billing_private.find_exchange_rate(u.currency, v_ep.currency, v_now) x) END
                       FROM unnest(pl.route_currencies) WITH ORDINALITY u(currency, slot)
                      ORDER BY u.slot)
          INTO v_fx_slot, v_fx_factor
          FROM billing_private.prefix_lengths pl;
    END IF;

    -- Rank the routes now, before the lock: for each enabled provider its longest
    -- valid rate (same rule as find_provider_rate, all providers in one index-only
    -- scan; of two rates of one prefix the later valid_from), restricted by the
    -- customer's longest routing rule, expanded into enabled gateways. Only the first
    -- 10 are kept (a top-N sort, not a sort of every route).
    -- The strategy's key is one bigint column: the cost rate in millionths (cost),
    -- -ACD or -ASR in millionths (quality, reliability; no statistics = last), a hash
    -- of (provider, a random seed drawn per call) (equal: a uniform random order of
    -- providers that keeps each provider's gateways together), 0 (priority).
    -- Tie-breakers after it: provider priority, cost, provider id, gateway priority,
    -- gateway id. Negative-margin routes sort before everything else as `refused` and
    -- are dropped unless allowed; they tell negative_margin from no_route.
    -- Rates (numeric(14,6)) and statistics (kept to 6 decimals by CDR billing) are
    -- exact in millionths, so the integer keys order exactly as the numbers do; the
    -- sort compares integers and, with the keys first in the row and never NULL,
    -- reads them at fixed offsets (numeric keys and keys behind text columns cost
    -- the sort ~40 % more: docs/performance-route.md).
    SELECT count(*)::integer,
           array_agg(ROW(t.provider_id, t.name, t.add_prefix || substr(v_number, t.strip_digits + 1), t.rate)::billing_private.route_candidate
                     ORDER BY t.key, t.provider_priority, t.rate_u, t.provider_id, t.priority, t.id)
               FILTER (WHERE NOT t.refused)
      INTO v_candidates, v_routes
      FROM (SELECT NOT (v_allow_negative OR pc.rate_u <= v_sell_rate_u) AS refused,
                   coalesce(CASE v_strategy
                                 WHEN 1 THEN pc.rate_u
                                 WHEN 2 THEN -(gs.acd * 1000000)::bigint
                                 WHEN 3 THEN -(gs.asr * 1000000)::bigint
                                 WHEN 4 THEN hashint8extended(gw.provider_id, v_seed)
                                 ELSE 0
                            END, 9223372036854775807) AS key,
                   gw.provider_priority, pc.rate_u, gw.provider_id, gw.priority, gw.gateway_id AS id,
                   pc.rate, gw.name, gw.add_prefix, gw.strip_digits
              -- rate_u: the cost in the customer's currency in millionths, converted only
              -- when some provider bills in another currency: round(rate x exchange rate, 6)
              -- (docs/rounding.md); NULL for a currency without a rate (filtered below)
              FROM (SELECT DISTINCT ON (pr.provider_id) pr.provider_id, pr.rate,
                           CASE WHEN v_convert
                                THEN (pr.rate * v_fx_factor[v_fx_slot[pr.provider_id]])::bigint
                                ELSE (pr.rate * 1000000)::bigint END AS rate_u
                      FROM billing.provider_rates pr
                     WHERE pr.prefix = ANY (v_prefixes)
                       AND NOT pr.blocked
                       AND (pr.valid_from IS NULL OR pr.valid_from <= v_now)
                       AND (pr.valid_to IS NULL OR v_now < pr.valid_to)
                     ORDER BY pr.provider_id, length(pr.prefix) DESC, pr.valid_from DESC NULLS LAST) pc
              -- enabled gateways of enabled providers with the provider's priority:
              -- one small table kept by triggers (0015)
              JOIN billing_private.route_gateways gw ON gw.provider_id = pc.provider_id
              -- the statistics, read only for the strategies that use them
              LEFT JOIN (SELECT s.gateway_id, s.asr, s.acd
                           FROM billing.gateway_stats s
                          WHERE v_strategy IN (2, 3)) gs
                     ON gs.gateway_id = gw.gateway_id
               -- a gateway that would strip the whole number cannot dial it
             WHERE (gw.strip_digits < length(v_number) OR gw.add_prefix <> '')
               AND pc.rate_u IS NOT NULL   -- a currency without an exchange rate: not offered
               AND (NOT EXISTS (SELECT FROM billing.routing_rules rr
                                 WHERE rr.customer_id = v_customer_id AND rr.prefix = ANY (v_prefixes))
                    OR gw.provider_id IN (SELECT rp.provider_id
                                            FROM billing.routing_rule_providers rp
                                           WHERE rp.routing_rule_id = (SELECT rr.id FROM billing.routing_rules rr
                                                                        WHERE rr.customer_id = v_customer_id
                                                                          AND rr.prefix = ANY (v_prefixes)
                                                                        ORDER BY length(rr.prefix) DESC
                                                                        LIMIT 1)))
             ORDER BY refused, key, gw.provider_priority, pc.rate_u, gw.provider_id, gw.priority, gw.gateway_id
             LIMIT 10) t;

    -- 7-9: limits and funds. route_call serialises per customer here and re-reads
    -- the row under the lock; the preview reads without locking. First the call's own
    -- uuid (the lock order of CDR billing): no hold for a call whose CDR is in.
    IF p_place_hold THEN
        PERFORM pg_advisory_xact_lock(1667523698, hashtext(p_call_uuid));
        IF EXISTS (SELECT FROM billing.fs_cdr f WHERE f.uuid = p_call_uuid) THEN
            reason := 'call_ended'; hangup_cause := 'NORMAL_CLEARING';
            RETURN NEXT; RETURN;
        END IF;
        SELECT c.balance, c.credit_limit, c.max_calls INTO v_balance, v_credit_limit, v_max_calls
          FROM billing.customers c WHERE c.id = v_ep.customer_id
           FOR NO KEY UPDATE;
    END IF;
    SELECT hs.calls, hs.held, hs.endpoint_calls, hs.endpoint_held, hs.endpoint_month_spend
      INTO v_calls, v_held, v_ep_calls, v_ep_held, v_month_spend
      FROM billing_private.route_holds(v_ep.customer_id, v_ep.id, p_call_uuid,
                                       v_ep.spend_limit_month IS NOT NULL, date_trunc('month', v_now)::date) hs;

    -- 7. too_many_calls: holds are the calls in progress, across every switch.
    IF v_calls >= v_max_calls OR v_ep_calls >= v_ep.max_calls THEN
        reason := 'too_many_calls'; hangup_cause := 'NORMAL_CIRCUIT_CONGESTION';
        RETURN NEXT; RETURN;
    END IF;

    -- 8. spend_limit: room = limit - spent this calendar month - the endpoint's holds.
    -- Reached when not even the first increment fits in the room; otherwise the room
    -- also caps max_duration below.
    v_room := v_balance + v_credit_limit - v_held;
    IF v_ep.spend_limit_month IS NOT NULL THEN
        v_spend_room := v_ep.spend_limit_month - v_ep_held - v_month_spend;
        IF v_spend_room < billing_private.charge(1, v_rate.rate, v_rate.connect_fee, v_rate.min_duration,
                                                 v_rate.increment_first, v_rate.increment_next) THEN
            reason := 'spend_limit'; hangup_cause := 'CALL_REJECTED';
            RETURN NEXT; RETURN;
        END IF;
        v_room := least(v_room, v_spend_room);
    END IF;

    -- 9. insufficient_funds: the longest call that fits, capped by the setting.
    v_max := billing_private.max_duration(v_room, v_rate.rate, v_rate.connect_fee, v_rate.min_duration,
                                          v_rate.increment_first, v_rate.increment_next, v_ep.max_call_seconds);
    IF v_max <= 0 THEN
        reason := 'insufficient_funds'; hangup_cause := 'CALL_REJECTED';
        RETURN NEXT; RETURN;
    END IF;
    -- What the hold covers now: one quota (on the increment grid), or all of v_max.
    v_granted := billing_private.grant_seconds(v_ep.quota_seconds, v_max, v_rate.min_duration,
                                               v_rate.increment_first, v_rate.increment_next);

    -- 10-11. negative_margin when routes exist but none is allowed; no_route otherwise.
    IF v_routes IS NULL THEN
        IF v_candidates > 0 THEN
            reason := 'negative_margin';
        ELSE
            reason := 'no_route';
        END IF;
        hangup_cause := 'NO_ROUTE_DESTINATION';
        RETURN NEXT; RETURN;
    END IF;

    IF p_place_hold THEN
        -- The hold's commit need not wait for the WAL flush: a server crash can lose
        -- only the holds of the last ~0.6 s (3 x wal_writer_delay), never a debit or a
        -- CDR, and call set-up no longer waits for the disk (docs/routing.md and
        -- docs/performance-route.md). SET LOCAL lasts until the end of the caller's
        -- transaction.
        SET LOCAL synchronous_commit = off;
        -- Expiry: every route may ring for ring_timeout_seconds (the switch's
        -- call_timeout, route_options), then the grant runs from the answer, then the
        -- grace; a hold outlives the longest failover chain the dialplan allows.
        INSERT INTO billing.call_holds AS h
               (call_uuid, customer_id, endpoint_id, amount, sell_rate, max_duration, destination, created_at,
                expires_at, granted_seconds, connect_fee, min_duration, increment_first, increment_next, grants,
                granted_at)
        VALUES (p_call_uuid, v_ep.customer_id, v_ep.id,
                billing_private.charge(v_granted, v_rate.rate, v_rate.connect_fee, v_rate.min_duration,
                                       v_rate.increment_first, v_rate.increment_next),
                v_rate.rate, v_max, v_number, v_now,
                v_now + make_interval(secs => cardinality(v_routes) * v_ep.ring_timeout_seconds + v_granted
                                              + v_ep.hold_grace_seconds),
                v_granted, v_rate.connect_fee, v_rate.min_duration, v_rate.increment_first, v_rate.increment_next,
                1, v_now)
        ON CONFLICT (call_uuid) DO UPDATE
           SET customer_id = EXCLUDED.customer_id, endpoint_id = EXCLUDED.endpoint_id,
               amount = EXCLUDED.amount, sell_rate = EXCLUDED.sell_rate,
               max_duration = EXCLUDED.max_duration, destination = EXCLUDED.destination,
               created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
               granted_seconds = EXCLUDED.granted_seconds, connect_fee = EXCLUDED.connect_fee,
               min_duration = EXCLUDED.min_duration, increment_first = EXCLUDED.increment_first,
               increment_next = EXCLUDED.increment_next, grants = 1, granted_at = EXCLUDED.granted_at;
    END IF;

    RETURN QUERY
        SELECT true, NULL::text, NULL::text, v_ep.customer_id, v_ep.id, v_number, v_rate.prefix::text,
               v_rate.rate::numeric, v_max, r.seq::integer, r.gateway,
               'sofia/gateway/' || r.gateway || '/' || r.dial_number, r.provider_id, r.cost_rate, v_granted
          FROM unnest(v_routes) WITH ORDINALITY AS r(provider_id, gateway, dial_number, cost_rate, seq)
         ORDER BY r.seq;
END $$;

-- FreeSWITCH's entry point. SECURITY DEFINER: the switch's role has no table
-- privileges, only EXECUTE on this function (zz_grants.sql). search_path pinned.
CREATE OR REPLACE FUNCTION billing.route_call(
    p_call_uuid   text,
    p_source_ip   inet,
    p_sip_user    text,
    p_caller_id   text,
    p_destination text)
RETURNS TABLE (
    ok            boolean,
    reason        text,
    hangup_cause  text,
    customer_id   bigint,
    endpoint_id   bigint,
    destination   text,
    sell_prefix   text,
    sell_rate     numeric,
    max_duration  integer,
    route_seq     integer,
    gateway       text,
    dial_string   text,
    provider_id   bigint,
    cost_rate     numeric,
    granted_seconds integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
ROWS 10                                 -- see route_decide
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM billing_private.route_decide(p_call_uuid, p_source_ip, p_sip_user, p_caller_id, p_destination, true);
END $$;

-- The routing simulator: same rows (plus each route's currency), no hold, no lock.
CREATE OR REPLACE FUNCTION billing.route_preview(
    p_call_uuid   text,
    p_source_ip   inet,
    p_sip_user    text,
    p_caller_id   text,
    p_destination text)
RETURNS TABLE (
    ok            boolean,
    reason        text,
    hangup_cause  text,
    customer_id   bigint,
    endpoint_id   bigint,
    destination   text,
    sell_prefix   text,
    sell_rate     numeric,
    max_duration  integer,
    route_seq     integer,
    gateway       text,
    dial_string   text,
    provider_id   bigint,
    cost_rate     numeric,
    granted_seconds integer,
    cost_currency text,            -- not in route_call (CONTRACTs 1, 1b): the provider's currency,
    exchange_rate numeric,         -- the rate into the customer's (NULL: the same currency)
    converted_cost_rate numeric)   -- and cost_rate in the customer's currency, as ranked
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the extra columns are looked up here, not in route_decide: call set-up pays nothing
    -- for them; same rule (find_exchange_rate) and same moment (now()) as the ranking
    RETURN QUERY
        SELECT d.*, p.currency::text, fx.rate::numeric,
               CASE WHEN fx.rate IS NULL THEN d.cost_rate ELSE round(d.cost_rate * fx.rate, 6) END
          FROM billing_private.route_decide(p_call_uuid, p_source_ip, p_sip_user, p_caller_id, p_destination, false) d
          LEFT JOIN billing.providers p ON p.id = d.provider_id
          LEFT JOIN billing.customers c ON c.id = d.customer_id
          LEFT JOIN LATERAL billing_private.find_exchange_rate(p.currency, c.currency, now()) fx ON true
         ORDER BY d.route_seq;
END $$;

-- Re-authorization (CONTRACT 1b): one more quota for a call in progress. The switch
-- asks settings.reauth_margin_seconds before the grant runs out; without an answer the
-- call ends when its grant does.
--   ok, granted_seconds = the new total since the answer, final = nothing more will be
--   granted (the funds, the endpoint's month spend limit or max_call_seconds stopped it
--   short of a whole quota);
--   not ok: unknown_call (no hold: the call has ended, or it was never routed here),
--   account_disabled (customer or endpoint disabled since), insufficient_funds (not one
--   more second fits), max_call_seconds (the call has reached the longest allowed);
--   granted_seconds is then what stays granted.
-- Funds and limits are counted exactly as by route_call, under the same locks in the
-- same order (the uuid, the customer row, then the hold), so re-authorizations and new
-- calls of one customer can never together promise more than balance + credit limit.
-- The grant is priced with the rate terms the hold was placed with, as CDR billing will.
-- The expiry moves to the end of the new grant (from p_answered_seconds, the seconds
-- since the answer as the switch counts them) plus the grace.
-- Cost: the uuid's advisory lock, call_holds by pk (twice), the customer row locked,
-- the endpoint by pk, billing_private.route_holds (ix_call_holds_customer_id), one
-- UPDATE of the hold.
CREATE OR REPLACE FUNCTION billing.reauthorize_call(p_call_uuid text, p_answered_seconds integer)
RETURNS TABLE (ok boolean, reason text, granted_seconds integer, final boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_customer_id bigint;
    v_hold        billing.call_holds;
    v_c           record;
    v_e           record;
    v_s           record;
    v_hs          record;
    v_room        numeric;
    v_max         integer;
    v_next        integer;
    v_target      integer;
BEGIN
    ok := false; final := true;
    IF p_call_uuid IS NULL OR btrim(p_call_uuid) = '' OR length(p_call_uuid) > 255 THEN
        reason := 'unknown_call';
        RETURN NEXT; RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(1667523698, hashtext(p_call_uuid));
    SELECT h.customer_id INTO v_customer_id FROM billing.call_holds h WHERE h.call_uuid = p_call_uuid;
    IF v_customer_id IS NULL THEN
        reason := 'unknown_call';
        RETURN NEXT; RETURN;
    END IF;
    SELECT c.balance, c.credit_limit, c.enabled INTO v_c
      FROM billing.customers c WHERE c.id = v_customer_id
       FOR NO KEY UPDATE;
    SELECT * INTO v_hold FROM billing.call_holds h WHERE h.call_uuid = p_call_uuid FOR UPDATE;
    v_hold.granted_seconds := coalesce(v_hold.granted_seconds, v_hold.max_duration, 0);
    granted_seconds := v_hold.granted_seconds;
    SELECT e.enabled, e.spend_limit_month INTO v_e FROM billing.endpoints e WHERE e.id = v_hold.endpoint_id;
    IF NOT coalesce(v_c.enabled, false) OR NOT coalesce(v_e.enabled, false) THEN
        reason := 'account_disabled';
        RETURN NEXT; RETURN;
    END IF;
    SELECT s.max_call_seconds, s.quota_seconds, s.hold_grace_seconds INTO v_s FROM billing.settings s;
    IF v_hold.granted_seconds >= v_s.max_call_seconds THEN
        reason := 'max_call_seconds';
        RETURN NEXT; RETURN;
    END IF;

    -- The money this call may use: everything not held by the customer's other calls
    -- (route_holds leaves this uuid out), within the endpoint's month spend limit.
    SELECT * INTO v_hs
      FROM billing_private.route_holds(v_customer_id, v_hold.endpoint_id, p_call_uuid,
                                       v_e.spend_limit_month IS NOT NULL, date_trunc('month', now())::date);
    v_room := v_c.balance + v_c.credit_limit - v_hs.held;
    IF v_e.spend_limit_month IS NOT NULL THEN
        v_room := least(v_room, v_e.spend_limit_month - v_hs.endpoint_held - v_hs.endpoint_month_spend);
    END IF;
    v_max := billing_private.max_duration(v_room, v_hold.sell_rate, v_hold.connect_fee, v_hold.min_duration,
                                          v_hold.increment_first, v_hold.increment_next, v_s.max_call_seconds);
    -- One more quota on the increment grid (with no quota setting: all the funds allow).
    v_next := CASE WHEN v_s.quota_seconds IS NULL THEN v_s.max_call_seconds
                   ELSE billing_private.billed_seconds(v_hold.granted_seconds + v_s.quota_seconds, v_hold.min_duration,
                                                       v_hold.increment_first, v_hold.increment_next) END;
    v_target := least(v_max, v_next);
    IF v_target <= v_hold.granted_seconds THEN
        reason := 'insufficient_funds';
        RETURN NEXT; RETURN;
    END IF;

    UPDATE billing.call_holds h
       SET granted_seconds = v_target,
           amount = billing_private.charge(v_target, v_hold.sell_rate, v_hold.connect_fee, v_hold.min_duration,
                                           v_hold.increment_first, v_hold.increment_next),
           grants = h.grants + 1,
           granted_at = now(),
           expires_at = now() + make_interval(secs => greatest(v_target - greatest(coalesce(p_answered_seconds, 0), 0), 0)
                                                      + v_s.hold_grace_seconds)
     WHERE h.call_uuid = p_call_uuid;
    ok := true;
    reason := NULL;
    granted_seconds := v_target;
    final := v_target < v_next OR v_target >= v_s.max_call_seconds;
    RETURN NEXT;
END $$;

-- A call that ended before its set-up answer could be used: route.lua gave up waiting
-- (billing_route_timeout_ms) while its worker's route_call was held up, and the worker
-- finds the call gone when the answer comes. Drops that uuid's hold at once instead of
-- leaving the money blocked until the hold expires. Returns whether a hold was dropped.
-- Cost: the uuid's advisory lock, call_holds by pk.
CREATE OR REPLACE FUNCTION billing.release_call(p_call_uuid text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_call_uuid IS NULL OR length(p_call_uuid) > 255 THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(1667523698, hashtext(p_call_uuid));
    DELETE FROM billing.call_holds h WHERE h.call_uuid = p_call_uuid;
    RETURN FOUND;
END $$;
