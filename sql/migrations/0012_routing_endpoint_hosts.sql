-- 0012 routing: most IP trunks are one host (a /32, or /128 in IPv6). route_call first
-- looks for an enabled endpoint of exactly the source host with this btree index
-- (about 10 us) and only falls back to the longest-CIDR GiST search of 0001's
-- ix_endpoints_ip (about 100 us, docs/performance-route.md) when there is none.
CREATE INDEX ix_endpoints_ip_host ON billing.endpoints (ip) WHERE auth = 'ip' AND enabled;
