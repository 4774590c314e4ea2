-- Exchange rates (migration 0110): which rate converts a provider's currency into a
-- customer's at a moment. Operator documentation: docs/billing.md "Currencies";
-- rounding: docs/rounding.md "Currency conversion".
--
-- One rule everywhere a rate is chosen: the row of the pair (from, to) with
-- valid_from <= moment < valid_to (NULL = open); of several, the latest valid_from
-- (unique per pair, so there is no tie to break). find_exchange_rate is that rule: CDR
-- rating (through exchange_rate_at), the set-based re-rate, route_call's ranking (each
-- enabled provider's rate into the customer's currency, 11_route_call.sql), the
-- simulator and route_preview.

-- The rate from p_from to p_to valid at p_at; no row when the currencies are the same
-- (nothing to convert) or when none is valid. Inlined by the planner into its callers:
-- with the currencies of an outer row, `p_from <> p_to` becomes a one-time filter, so a
-- call whose provider and customer share a currency never reads the table.
-- Cost: uq_exchange_rates_pair_valid_from, one backward range scan, first row (no sort:
-- ordering by valid_from alone is the index's order).
-- (RETURNS TABLE rather than SETOF the table's row type: the procedures of this release
-- can then be applied to a schema that predates 0110, as tests of older migrations do.)
CREATE OR REPLACE FUNCTION billing_private.find_exchange_rate(p_from text, p_to text, p_at timestamptz)
RETURNS TABLE (id bigint, rate numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT x.id, x.rate
      FROM billing.exchange_rates x
     WHERE p_from <> p_to
       AND x.from_currency = p_from AND x.to_currency = p_to
       AND x.valid_from <= p_at
       AND (x.valid_to IS NULL OR p_at < x.valid_to)
     ORDER BY x.valid_from DESC   -- unique per pair (uq_exchange_rates_pair_valid_from): no tie
     LIMIT 1
$$;

-- The same rate as a value, for expressions: CDR rating calls it only when the provider's
-- currency is not the customer's (rate_cdr, 20_cdr_billing.sql). Not inlined (a query
-- is no simple expression): each call runs find_exchange_rate's probe.
CREATE OR REPLACE FUNCTION billing_private.exchange_rate_at(p_from text, p_to text, p_at timestamptz)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT x.rate FROM billing_private.find_exchange_rate(p_from, p_to, p_at) x
$$;

-- For the routing simulator: the providers that would have offered a route for
-- p_number (canonical destination) to p_customer_id at p_at -- enabled, with an
-- enabled gateway, a valid unblocked rate, allowed by the customer's routing rule --
-- but were left out because their currency has no exchange rate to the customer's.
-- Not used by route_call; runs only when the simulator asks.
CREATE OR REPLACE FUNCTION billing_private.route_fx_refused(p_customer_id bigint, p_number text, p_at timestamptz)
RETURNS TABLE (provider_id bigint, provider text, currency text, customer_currency text)
LANGUAGE sql STABLE AS $$
    WITH cu AS (SELECT c.id, c.currency FROM billing.customers c WHERE c.id = p_customer_id),
    rule AS (SELECT rr.id FROM billing.routing_rules rr
              WHERE rr.customer_id = p_customer_id AND rr.prefix = ANY (billing_private.prefixes(p_number))
              ORDER BY length(rr.prefix) DESC LIMIT 1)
    SELECT p.id, p.name, p.currency::text, cu.currency::text
      FROM billing.providers p
      CROSS JOIN cu
     WHERE p.enabled
       AND p.currency <> cu.currency
       AND EXISTS (SELECT FROM billing_private.route_gateways gw WHERE gw.provider_id = p.id)
       AND EXISTS (SELECT FROM billing_private.find_provider_rate(p.id, p_number, p_at))
       AND NOT EXISTS (SELECT FROM billing_private.find_exchange_rate(p.currency, cu.currency, p_at))
       AND (NOT EXISTS (SELECT FROM rule)
            OR p.id IN (SELECT rp.provider_id FROM billing.routing_rule_providers rp
                         WHERE rp.routing_rule_id = (SELECT rule.id FROM rule)))
     ORDER BY p.name
$$;
