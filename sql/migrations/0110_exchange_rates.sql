-- 0110 exchange rates: a provider's rates are in its currency, a customer pays in
-- theirs (docs/billing.md "Currencies", docs/rounding.md "Currency conversion").
--
-- Call set-up ranks the carriers, and CDR billing books the cost, in the customer's
-- currency, converting with the rate from the provider's currency to the customer's
-- valid at that moment (route_call: now; a CDR: its start_stamp). Of two valid rates of
-- one pair the latest valid_from wins (unique per pair). A route
-- through a provider whose currency has no valid rate to the customer's is not
-- offered; an answered CDR that needs one and has none is kept unrated
-- (`no_exchange_rate`) until a rate is added and the period re-rated.
--
-- Rates are exact (numeric, 12 decimals; a value with more is refused, never rounded)
-- and direct: SEK -> EUR is its own row, never derived from EUR -> SEK (1/x is not a
-- finite decimal).

CREATE DOMAIN billing.exchange_rate AS numeric(24, 12) CHECK (VALUE > 0);

CREATE TABLE billing.exchange_rates (
    id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_exchange_rates PRIMARY KEY,
    from_currency  billing.currency NOT NULL,
    to_currency    billing.currency NOT NULL,
    rate           billing.exchange_rate NOT NULL,   -- 1 from_currency = rate to_currency
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz NULL,                 -- exclusive; NULL = open
    created_by     text NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_exchange_rates_pair CHECK (from_currency <> to_currency),
    CONSTRAINT ck_exchange_rates_validity CHECK (valid_to IS NULL OR valid_to > valid_from),
    -- also the index of a CDR's lookup: one pair, latest valid_from <= start_stamp
    CONSTRAINT uq_exchange_rates_pair_valid_from UNIQUE (from_currency, to_currency, valid_from)
);
-- route_call's lookup: every rate into the customer's currency valid now
CREATE INDEX ix_exchange_rates_to_currency ON billing.exchange_rates (to_currency, from_currency, valid_from);

-- The rated call gains where its cost came from when it was converted (NULL when the
-- provider's currency is the customer's): the provider's currency, the cost in it and
-- the rate used. cost_amount stays the cost in the customer's currency (margin).
ALTER TABLE billing.cdr
    ADD COLUMN cost_currency        text NULL,
    ADD COLUMN cost_amount_original billing.money NULL,
    ADD COLUMN exchange_rate        numeric NULL;
ALTER TYPE billing_private.rated_call
    ADD ATTRIBUTE cost_currency        text,
    ADD ATTRIBUTE cost_amount_original numeric,
    ADD ATTRIBUTE exchange_rate        numeric;

-- Routing: route_call learns in its first statement, from the one-row table it already
-- reads (billing_private.prefix_lengths, 0014: per-call constants kept by triggers),
-- which currencies the routable providers bill in. A customer paying in the only one
-- in use pays nothing more per call; otherwise one exchange-rate lookup per currency
-- in use and the conversion per candidate rate (docs/performance-route.md).
-- route_currency_slots: indexed by provider id, the position of that routable
-- provider's currency in route_currencies (NULL for other ids), so the ranking finds a
-- provider's factor by two subscripts -- int4 elements, a constant-time read -- rather
-- than a search per candidate.
ALTER TABLE billing_private.prefix_lengths
    ADD COLUMN route_currencies text[] NOT NULL DEFAULT '{}',
    ADD COLUMN route_currency_slots integer[] NOT NULL DEFAULT '{}';

CREATE OR REPLACE FUNCTION billing_private.route_gateways_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_currencies text[];
    v_slots      integer[] := '{}';
    r            record;
BEGIN
    -- one rebuild at a time: a second one waits, then sees the first's rows
    LOCK TABLE billing_private.route_gateways IN EXCLUSIVE MODE;
    DELETE FROM billing_private.route_gateways;
    INSERT INTO billing_private.route_gateways
           (gateway_id, provider_id, name, priority, strip_digits, add_prefix, provider_priority)
    SELECT g.id, g.provider_id, g.name, g.priority, g.strip_digits, g.add_prefix, p.priority
      FROM billing.gateways g
      JOIN billing.providers p ON p.id = g.provider_id
     WHERE p.enabled AND g.enabled;
    -- the currencies the routable providers bill in and each one's slot among them
    -- (0110); written only when they change
    SELECT coalesce(array_agg(DISTINCT p.currency::text ORDER BY p.currency::text), '{}')
      INTO v_currencies
      FROM billing.providers p
     WHERE p.id IN (SELECT gw.provider_id FROM billing_private.route_gateways gw);
    FOR r IN SELECT p.id, p.currency::text AS currency
               FROM billing.providers p
              WHERE p.id IN (SELECT gw.provider_id FROM billing_private.route_gateways gw)
              ORDER BY p.id LOOP
        -- the first assignment sets the lower bound (the smallest id), later ones
        -- extend the array, NULL in the gaps
        v_slots[r.id] := array_position(v_currencies, r.currency);
    END LOOP;
    UPDATE billing_private.prefix_lengths pl
       SET route_currencies = v_currencies, route_currency_slots = v_slots
     WHERE pl.route_currencies IS DISTINCT FROM v_currencies
        OR pl.route_currency_slots IS DISTINCT FROM v_slots;
END $$;

SELECT billing_private.route_gateways_rebuild();

-- Return types and signatures that change (the procedures re-create them):
-- route_preview gains the route's currency, exchange rate and converted cost (the
-- simulator shows them; route_call's columns, CONTRACT 1, do not change);
-- rate_cdr_with takes the two currencies and the exchange rate (its signatures before
-- and after 0026's sell cap).
DROP FUNCTION IF EXISTS billing.route_preview(text, inet, text, text, text);
DROP FUNCTION IF EXISTS billing_private.rate_cdr_with(
    bigint, bigint, text, timestamptz, timestamptz, integer, bigint, bigint, text,
    bigint, text, numeric, numeric, integer, integer, integer,
    bigint, numeric, numeric, integer, integer, integer);
DROP FUNCTION IF EXISTS billing_private.rate_cdr_with(
    bigint, bigint, text, timestamptz, timestamptz, integer, bigint, bigint, text, integer,
    bigint, text, numeric, numeric, integer, integer, integer,
    bigint, numeric, numeric, integer, integer, integer);
