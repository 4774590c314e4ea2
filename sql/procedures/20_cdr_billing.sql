-- CDR billing in real time (CONTRACT 2): FreeSWITCH's mod_cdr_pg_csv inserts one row
-- per A-leg into billing.fs_cdr; the BEFORE INSERT trigger below rates it and books it
-- in the same transaction. Operator documentation: docs/billing.md, docs/rounding.md.
--
-- billing_private.rate_cdr(...) answers "what does this call cost, or why can it not
-- be rated?" for one raw CDR (the trigger). The rule itself (reasons, billed seconds,
-- charges) is billing_private.rate_cdr_with, shared with billing_private.rerate,
-- which finds the rates of many calls at once with hash joins (same selection rule as
-- find_sell_rate / find_provider_rate; tests/billing/test_rerate_equivalence.py
-- checks that both give identical results).
--   Inputs: the billing_* variables route.lua set, start/end stamps, billsec,
--   billing_reject_reason.
--   Sell side: billing_private.find_sell_rate(customer, canonical destination,
--   start_stamp) -- the same lookup route_call uses.
--   Cost side: billing_private.find_provider_rate(provider, canonical destination,
--   start_stamp). The canonical destination (after the endpoint's strip/add, before
--   the gateway's) is what provider rate decks are written in (E.164 prefixes); the
--   gateway's digit manipulation is transport, not pricing.
--   Cost: pk lookups of customer and provider, then the rate lookups
--   (ix_rates_ratecard_id_prefix, uq_provider_rates_provider_id_prefix_valid_from, each
--   with prefix = ANY(the prefixes of the number no longer than
--   billing_private.prefix_lengths.longest, 0014: 6 probes instead of 12 for a 12-digit
--   number when no prefix is longer than 6 digits)). Between valid rates of one prefix
--   the latest valid_from wins, then the highest id (10_rating.sql; rerate agrees).
--   Currencies (0110): when the provider's currency is not the customer's, the cost is
--   converted with exchange_rate_at(provider's, customer's, start_stamp)
--   (uq_exchange_rates_pair_valid_from, one backward probe). It is a function call in an
--   expression, not a lateral join: a join's plan nodes are started for every CDR (the
--   trigger's plan is cached, its executor is not), which cost one currency ~45,000
--   instructions per CDR for nothing; the call costs nothing when not made. For the
--   same reason the executor's start-up grows with every expression node: rate_cdr_with
--   fences (OFFSET 0) its inputs and its reason so that each expression exists once
--   (without them the reason was built twice and the exchange rate three times: +56,000
--   instructions). A CDR in one currency costs what it did before 0110 (within 0.5 %;
--   docs/performance-cdr.md).
--
-- Unrated reasons, checked in this order (the first that applies is recorded):
--   missing_customer, unknown_customer, missing_destination, invalid_destination,
--   missing_start_stamp, missing_billsec, negative_billsec, end_before_start,
--   and for answered calls only (billsec > 0; an unanswered call costs 0 on both
--   sides whatever the rates): no_sell_rate, missing_provider, unknown_provider,
--   no_cost_rate, no_exchange_rate (0110: the provider bills in another currency and
--   no exchange rate to the customer's is valid at start_stamp).
-- A call refused by route_call (billing_reject_reason set) that never connected is
-- rated at 0 without lookups: it is a valid, free CDR.

-- rate_cdr_with: the rating rule once the rates are known -- reasons, billed seconds,
-- charges. Shared by rate_cdr (rates found by find_sell_rate / find_provider_rate,
-- one call) and by billing_private.rerate (rates found set-based for many calls).
-- p_customer_found / p_provider_found: the id when that row exists, else NULL.
-- p_sell_cap: a call never costs more than its hold (CONTRACT 1b): the customer is
-- charged for at most this many seconds of billsec -- the seconds the call's hold
-- granted, or settings.max_call_seconds for a call that had no hold; the seconds
-- beyond it are returned as overrun_seconds (billed to nobody, recorded). The
-- carrier's cost is always the whole billsec. NULL: no cap.
CREATE OR REPLACE FUNCTION billing_private.rate_cdr_with(
    p_customer_id bigint, p_customer_found bigint, p_destination text, p_start timestamptz,
    p_end timestamptz, p_billsec integer, p_provider_id bigint, p_provider_found bigint,
    p_reject_reason text, p_sell_cap integer,
    s_id bigint, s_prefix text, s_rate numeric, s_connect_fee numeric, s_min_duration integer,
    s_first integer, s_next integer,
    c_id bigint, c_rate numeric, c_connect_fee numeric, c_min_duration integer,
    c_first integer, c_next integer,
    p_currency text, c_currency text, c_exchange_rate numeric)
RETURNS SETOF billing_private.rated_call
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v.reason IS NULL THEN 'rated' ELSE 'unrated' END,
           v.reason,
           p_customer_found,
           p_provider_found,
           s_id, s_prefix, s_rate,
           CASE WHEN v.bill THEN billing_private.billed_seconds(v.sell_sec, s_min_duration, s_first, s_next) ELSE 0 END,
           CASE WHEN v.bill THEN billing_private.charge(v.sell_sec, s_rate, s_connect_fee, s_min_duration, s_first, s_next)
                ELSE 0 END,
           c_id, c_rate,
           CASE WHEN v.bill THEN billing_private.billed_seconds(p_billsec, c_min_duration, c_first, c_next) ELSE 0 END,
           -- the cost in the customer's currency: the provider's charge converted when
           -- the currencies differ, round(charge x exchange rate, 6) (docs/rounding.md)
           CASE WHEN NOT v.bill THEN 0 WHEN v.fx IS NULL THEN v.cost ELSE round(v.cost * v.fx, 6) END,
           CASE WHEN v.bill THEN p_billsec - v.sell_sec ELSE 0 END,
           CASE WHEN v.bill AND v.fx IS NOT NULL THEN c_currency END,
           CASE WHEN v.bill AND v.fx IS NOT NULL THEN v.cost END,
           CASE WHEN v.bill THEN v.fx END
      FROM (SELECT r.reason, r.reason IS NULL AND NOT k.rejected AS bill,
                   least(p_billsec, coalesce(p_sell_cap, p_billsec)) AS sell_sec,
                   -- the provider's charge in its currency, once (the fence below)
                   billing_private.charge(p_billsec, c_rate, c_connect_fee, c_min_duration, c_first, c_next) AS cost,
                   k.fx
              -- fx: the exchange rate of an answered call (unanswered: 0 in any currency);
              -- NULL when nothing is converted, or when no rate is valid (no_exchange_rate)
              FROM (SELECT coalesce(p_reject_reason, '') <> '' AND coalesce(p_billsec, 0) = 0 AS rejected,
                           CASE WHEN p_billsec > 0 THEN c_exchange_rate END AS fx
                     OFFSET 0) k   -- a fence: the caller's exchange-rate expression once
             CROSS JOIN LATERAL (
                    SELECT CASE
                               WHEN k.rejected THEN NULL
                               WHEN p_customer_id IS NULL THEN 'missing_customer'
                               WHEN p_customer_found IS NULL THEN 'unknown_customer'
                               WHEN coalesce(p_destination, '') = '' THEN 'missing_destination'
                               -- no regex: PostgreSQL's engine makes {1,20} costly
                               WHEN length(p_destination) > 20
                                 OR translate(p_destination, '0123456789', '') <> '' THEN 'invalid_destination'
                               WHEN p_start IS NULL THEN 'missing_start_stamp'
                               WHEN p_billsec IS NULL THEN 'missing_billsec'
                               WHEN p_billsec < 0 THEN 'negative_billsec'
                               WHEN p_end < p_start THEN 'end_before_start'
                               WHEN p_billsec = 0 THEN NULL
                               WHEN s_id IS NULL THEN 'no_sell_rate'
                               WHEN p_provider_id IS NULL THEN 'missing_provider'
                               WHEN p_provider_found IS NULL THEN 'unknown_provider'
                               WHEN c_id IS NULL THEN 'no_cost_rate'
                               WHEN c_currency <> p_currency AND k.fx IS NULL THEN 'no_exchange_rate'
                           END AS reason
                    OFFSET 0) r   -- a fence: the reason once, not again inside `bill`
            OFFSET 0) v   -- a fence: the reason is computed once, not once per use below
$$;

CREATE OR REPLACE FUNCTION billing_private.rate_cdr(
    p_customer_id bigint, p_destination text, p_start timestamptz, p_end timestamptz,
    p_billsec integer, p_provider_id bigint, p_reject_reason text, p_sell_cap integer)
RETURNS SETOF billing_private.rated_call
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT x.*
      FROM (SELECT coalesce(p_reject_reason, '') <> '' AND coalesce(p_billsec, 0) = 0 AS rejected) AS k
      LEFT JOIN billing_private.prefix_lengths pl ON pl.id
      LEFT JOIN billing.customers c ON c.id = p_customer_id
      LEFT JOIN billing.providers p ON p.id = p_provider_id
      -- the number cut to the longest prefix in use (0014): same rates, fewer probes
      LEFT JOIN LATERAL billing_private.find_sell_rate(c.id, left(p_destination, coalesce(pl.longest, 20)), p_start) s
             ON NOT k.rejected
      LEFT JOIN LATERAL billing_private.find_provider_rate(p.id, left(p_destination, coalesce(pl.longest, 20)), p_start) pr
             ON NOT k.rejected
     CROSS JOIN LATERAL billing_private.rate_cdr_with(
            p_customer_id, c.id, p_destination, p_start, p_end, p_billsec, p_provider_id, p.id, p_reject_reason,
            p_sell_cap, s.id, s.prefix, s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next,
            pr.id, pr.rate, pr.connect_fee, pr.min_duration, pr.increment_first, pr.increment_next,
            c.currency, p.currency,
            -- an expression, not a join: a call in one currency starts no plan node for it
            CASE WHEN p.currency <> c.currency
                 THEN billing_private.exchange_rate_at(p.currency, c.currency, p_start) END) x
$$;

-- Exponential decay factor for gateway statistics: counters halve every hour, so the
-- last hour or two of traffic dominates ASR/ACD. STABLE: depends on now().
CREATE OR REPLACE FUNCTION billing_private.stats_decay(p_since timestamptz)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT round(exp(-0.693147180559945 * greatest(extract(epoch FROM now() - p_since)::float8, 0) / 3600.0)::numeric, 9)
$$;

-- The trigger: BEFORE INSERT so that status/unrated_reason are set on the row being
-- inserted (no second write of fs_cdr) and so that a duplicate can be dropped by
-- returning NULL. The identity id is already assigned when a BEFORE trigger runs.
--
-- Idempotency (docs/billing.md, "Duplicates"): a row whose uuid is already stored is
-- accepted and ignored -- INSERT reports 0 rows, FreeSWITCH sees success and does not
-- spool it -- but still releases a hold of that uuid (one placed by a route_call that
-- came late). Two sessions inserting the same uuid at once are serialised by a
-- transaction-level advisory lock on the uuid's hash (route_call, reauthorize_call and
-- release_call take the same lock), so the second one waits for the first to commit,
-- then sees its row (READ COMMITTED takes a fresh snapshot per statement) and is
-- ignored instead of failing on uq_fs_cdr_uuid.
--
-- A call never costs more than its hold (CONTRACT 1b): the hold is taken first
-- (DELETE .. RETURNING its granted seconds) and the customer is charged for at most
-- those seconds; billsec beyond them is recorded as overrun_seconds. An answered call
-- without a hold is billed in full up to settings.max_call_seconds and flagged no_hold;
-- billsec beyond max_call_seconds flags absurd_duration (docs/billing.md, "Calls to
-- review").
--
-- Never lost: an error while rating or booking is caught and the row kept as
-- 'unrated' with reason 'internal_error: ...' to be re-rated -- except a transient
-- error (deadlock, serialization failure, lock or statement timeout, cancel, shutdown,
-- lost connection, out of resources): it aborts the INSERT, so the sender tries again
-- (mod_cdr_pg_csv spools the row, `billing import-spool` retries) and the call is
-- billed instead of parked.
--
-- SECURITY DEFINER with a pinned search_path: billing_freeswitch may only INSERT into
-- fs_cdr; the booking (ledger, cdr, holds, stats) runs as the owner.
-- Lock order (the same in route_call and reauthorize_call): the uuid's advisory lock,
-- the hold, the customer row (through the ledger), then endpoint_month_spend.
-- Cost: one advisory lock, uq_fs_cdr_uuid probe, the hold by pk (DELETE .. RETURNING),
-- rate_cdr (see above), one insert into the cdr partition, one ledger insert (+ customer
-- update by its trigger), pk lookup and update for month spend (an upsert only for the
-- first row), one gateway sample (unlogged, no index); the settings row only for an
-- answered call without a hold.
CREATE OR REPLACE FUNCTION billing_private.tg_fs_cdr__bill()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v           record;
    v_rejected  boolean := coalesce(NEW.billing_reject_reason, '') <> '' AND coalesce(NEW.billsec, 0) = 0;
    v_answered  integer := CASE WHEN coalesce(NEW.billsec, 0) > 0 THEN 1 ELSE 0 END;
    v_balance   numeric;
    v_locked    boolean;    -- the advisory lock's (void) result, unused
    v_threshold numeric;
    v_held      integer;    -- seconds granted by the call's hold; NULL: no hold
    v_longest   integer;    -- settings.max_call_seconds
    v_cap       integer;
BEGIN
    -- An assignment, not PERFORM: PL/pgSQL evaluates it as a simple expression, without
    -- starting the executor for a one-row SELECT (~25-35 us less per CDR).
    v_locked := pg_advisory_xact_lock(1667523698, hashtext(NEW.uuid)) IS NOT NULL;
    IF EXISTS (SELECT 1 FROM billing.fs_cdr f WHERE f.uuid = NEW.uuid) THEN
        -- duplicate delivery: accepted, ignored, nothing billed; a hold of this uuid
        -- can only be a late route_call's and would block the customer's money
        DELETE FROM billing.call_holds h WHERE h.call_uuid = NEW.uuid;
        RETURN NULL;
    END IF;

    BEGIN
        DELETE FROM billing.call_holds h WHERE h.call_uuid = NEW.uuid
        RETURNING coalesce(h.granted_seconds, h.max_duration) INTO v_held;
        v_cap := v_held;
        IF v_answered = 1 AND NOT v_rejected THEN
            SELECT s.max_call_seconds INTO v_longest FROM billing.settings s;
            IF v_cap IS NULL THEN
                v_cap := v_longest;
            END IF;
        END IF;

        SELECT * INTO STRICT v
          FROM billing_private.rate_cdr(NEW.billing_customer_id, NEW.billing_destination, NEW.start_stamp,
                                        NEW.end_stamp, NEW.billsec, NEW.billing_provider_id, NEW.billing_reject_reason,
                                        v_cap);

        IF v.status = 'rated' AND v.sell_amount <> 0 THEN
            INSERT INTO billing.ledger (customer_id, kind, amount, call_uuid, note)
            VALUES (v.customer_id, 'call', -v.sell_amount, NEW.uuid, NEW.billing_destination);

            -- The ledger trigger has just updated (and locked) the customer row, so
            -- this read is the balance after exactly this debit.
            -- (a prepaid customer without a threshold is told when it goes below zero,
            -- which only a CDR without a hold can do)
            SELECT c.balance, coalesce(c.low_balance_alert, s.low_balance_default,
                                       CASE WHEN c.billing_type = 'prepaid' THEN 0 END)
              INTO v_balance, v_threshold
              FROM billing.customers c CROSS JOIN billing.settings s
             WHERE c.id = v.customer_id;
            IF v_threshold IS NOT NULL AND v_balance < v_threshold AND v_balance + v.sell_amount >= v_threshold THEN
                INSERT INTO billing.balance_events (customer_id, kind, balance, threshold)
                VALUES (v.customer_id, 'low_balance', v_balance, v_threshold);
            END IF;
        END IF;

        -- Month spend and gateway statistics: a plain UPDATE of the existing row (the
        -- common case), the upsert only when there is none yet (first call of the month
        -- or of the gateway; it also settles a race with another first call). A plain
        -- UPDATE skips the speculative insertion and the pk lookup of endpoints/gateways
        -- an upsert pays even when it ends in DO UPDATE; the result is the same.
        IF v.status = 'rated' AND v.sell_amount <> 0 AND NEW.billing_endpoint_id IS NOT NULL THEN
            UPDATE billing.endpoint_month_spend ms SET amount = ms.amount + v.sell_amount
             WHERE ms.endpoint_id = NEW.billing_endpoint_id AND ms.month = date_trunc('month', NEW.start_stamp)::date;
        END IF;
        -- same condition again, so FOUND here is the UPDATE's
        IF v.status = 'rated' AND v.sell_amount <> 0 AND NEW.billing_endpoint_id IS NOT NULL AND NOT FOUND THEN
            INSERT INTO billing.endpoint_month_spend AS ms (endpoint_id, month, amount)
            SELECT e.id, date_trunc('month', NEW.start_stamp)::date, v.sell_amount
              FROM billing.endpoints e
             WHERE e.id = NEW.billing_endpoint_id
            ON CONFLICT (endpoint_id, month) DO UPDATE SET amount = ms.amount + EXCLUDED.amount;
        END IF;

        -- Gateway statistics: one sample, folded into billing.gateway_stats by
        -- billing_private.fold_gateway_stats() (0025: the running update cost ~20 % of
        -- a CDR and serialised the CDRs of one gateway on its row).
        IF NOT v_rejected AND coalesce(NEW.billing_gateway, '') <> '' AND coalesce(NEW.billsec, 0) >= 0 THEN
            INSERT INTO billing_private.gateway_samples (gateway, answered, billsec)
            VALUES (NEW.billing_gateway, v_answered = 1, greatest(NEW.billsec, 0) * v_answered);
        END IF;
    EXCEPTION
        WHEN transaction_rollback OR lock_not_available OR operator_intervention OR insufficient_resources
             OR connection_exception OR system_error THEN
            -- Transient (classes 40, 57, 53, 08, 58 and 55P03): abort the INSERT so the
            -- sender retries; parking the call as unrated would release its hold and
            -- leave it unbilled.
            RAISE;
        WHEN OTHERS THEN
            -- Everything booked inside the block is rolled back (the hold too); keep the
            -- row, unrated, and release the hold.
            v := NULL;
            SELECT 'unrated' AS status, left('internal_error: ' || SQLSTATE || ' ' || SQLERRM, 500) AS unrated_reason,
                   NULL::bigint AS customer_id, NULL::bigint AS provider_id, NULL::bigint AS sell_rate_id,
                   NULL::text AS sell_prefix, NULL::numeric AS sell_rate, 0 AS billed_seconds, 0::numeric AS sell_amount,
                   NULL::bigint AS cost_rate_id, NULL::numeric AS cost_rate, 0 AS cost_billed_seconds,
                   0::numeric AS cost_amount, 0 AS overrun_seconds, NULL::text AS cost_currency,
                   NULL::numeric AS cost_amount_original, NULL::numeric AS exchange_rate
              INTO v;
            DELETE FROM billing.call_holds h WHERE h.call_uuid = NEW.uuid
            RETURNING coalesce(h.granted_seconds, h.max_duration) INTO v_held;
    END;

    NEW.status := v.status;
    NEW.unrated_reason := v.unrated_reason;
    NEW.held_seconds := v_held;

    INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, provider_id, gateway, caller_id,
                             destination, sell_prefix, start_stamp, answer_stamp, end_stamp, duration, billsec,
                             billed_seconds, cost_billed_seconds, sell_rate_id, sell_rate, sell_amount,
                             cost_rate_id, cost_rate, cost_amount, margin, hangup_cause, route_seq,
                             status, unrated_reason, held_seconds, overrun_seconds, no_hold, absurd_duration,
                             cost_currency, cost_amount_original, exchange_rate)
    VALUES (NEW.id, NEW.uuid, v.customer_id, NEW.billing_endpoint_id, v.provider_id, NEW.billing_gateway,
            NEW.caller_id_number, coalesce(NEW.billing_destination, NEW.destination_number), v.sell_prefix,
            coalesce(NEW.start_stamp, NEW.end_stamp, NEW.answer_stamp, NEW.received_at, now()),
            NEW.answer_stamp, NEW.end_stamp, coalesce(NEW.duration, 0), coalesce(NEW.billsec, 0),
            v.billed_seconds, v.cost_billed_seconds, v.sell_rate_id, v.sell_rate, v.sell_amount,
            v.cost_rate_id, v.cost_rate, v.cost_amount, v.sell_amount - v.cost_amount, NEW.hangup_cause,
            NEW.billing_route_seq, v.status, v.unrated_reason, v_held, coalesce(v.overrun_seconds, 0),
            v_answered = 1 AND NOT v_rejected AND v_held IS NULL,
            coalesce(v_answered = 1 AND NOT v_rejected AND NEW.billsec > v_longest, false),
            v.cost_currency, v.cost_amount_original, v.exchange_rate);
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER tg_fs_cdr__bill BEFORE INSERT ON billing.fs_cdr
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_fs_cdr__bill();
