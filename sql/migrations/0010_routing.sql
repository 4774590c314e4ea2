-- 0010 routing: what billing.route_call (sql/procedures/11_route_call.sql) needs
-- besides the foundation's tables and indexes.
--
-- One candidate route, collected into an array while the routes are ranked (before the
-- customer row is locked), returned as rows once the hold is placed.
CREATE TYPE billing_private.route_candidate AS (
    provider_id  bigint,
    gateway      text,
    dial_number  text,
    cost_rate    numeric
);
