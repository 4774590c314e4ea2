-- 0012 routing: most IP trunks are one host (a /32, or /128 in IPv6). route_call first
-- looks for an enabled endpoint of exactly the source host with this btree index and
-- only falls back to the longest-CIDR GiST search of 0001's ix_endpoints_ip when there
-- is none (docs/performance-route.md). `id` is in the key so that the lowest id wins
-- without a sort, which also makes the planner prefer this index to the GiST one
-- (whose equality search is ten times slower).
CREATE INDEX ix_endpoints_ip_host ON billing.endpoints (ip, id) WHERE auth = 'ip' AND enabled;
