-- 0011 routing indexes: longest-prefix lookups of billing.route_call without heap visits.
--
-- route_call ranks every provider at once with `prefix = ANY(all prefixes of the
-- number)`: about 60 matching rows of provider_rates for an 11-digit number. With
-- the columns the lookup filters and returns in the index, that is an index-only
-- scan (37 buffers instead of 93, docs/performance-route.md). It replaces the plain
-- prefix index of 0001, which it makes redundant.
CREATE INDEX ix_provider_rates_prefix_covering ON billing.provider_rates (prefix)
    INCLUDE (provider_id, rate, blocked, valid_from, valid_to);
DROP INDEX billing.ix_provider_rates_prefix;
