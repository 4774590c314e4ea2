-- 0016 prefixes compare byte by byte (collation "C").
--
-- Every longest-prefix lookup (destinations, sell rates, provider rates, routing rules:
-- route_call and CDR rating) walks btree indexes on `prefix` with `prefix = ANY(...)`,
-- and each index descent compares text. Under the database's default collation a text
-- comparison goes through the locale's strcoll (C.UTF-8 here, usually en_US.UTF-8 on
-- a Debian server, where it is slower still); prefixes are digit strings
-- (billing.digits), which sort the same byte by byte. Measured on the routing
-- benchmark's data set with C.UTF-8: 2 % fewer instructions per route_call
-- (docs/performance-route.md); the share is larger under en_US.UTF-8.
-- Equality does not change (both collations are deterministic). The indexes on these
-- columns are rebuilt; the tables are not rewritten (same type).
ALTER TABLE billing.destinations ALTER COLUMN prefix TYPE billing.digits COLLATE "C";
ALTER TABLE billing.rates ALTER COLUMN prefix TYPE billing.digits COLLATE "C";
ALTER TABLE billing.provider_rates ALTER COLUMN prefix TYPE billing.digits COLLATE "C";
ALTER TABLE billing.routing_rules ALTER COLUMN prefix TYPE billing.digits COLLATE "C";
-- Changing a column's type drops its statistics: without them the planner would pick
-- poor plans for route_call and CDR rating until autovacuum analyzes the tables.
ANALYZE billing.destinations, billing.rates, billing.provider_rates, billing.routing_rules;
