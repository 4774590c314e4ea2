-- 0090 IP endpoints: an address range belongs to one customer (docs/routing.md,
-- "Who is calling").
--
-- * Two customers may not have overlapping IP endpoints (198.51.100.7/32 of acme and
--   198.51.100.0/24 of beta): route_call would hand one customer's calls to the other.
--   An exclusion constraint refuses them: ranges that overlap (&&, GiST inet_ops, core
--   PostgreSQL) AND belong to different customers (<> on bigint needs btree_gist, a
--   trusted extension since PostgreSQL 13: the database owner may create it).
-- * Within one customer, ranges may nest (a /32 for one PBX inside the customer's /24):
--   the longest match wins, as route_call always did. Two endpoints with the very same
--   range cannot be told apart (route_call picked the lowest id), so they are refused
--   as well (uq_endpoints_ip).
-- * Disabled endpoints keep their range: give it to another customer by deleting the
--   endpoint or changing its range first.
--
-- A database that already has such endpoints is refused with the list of them, and
-- nothing is changed: fix them (docs/routing.md says how), then run `db upgrade` again.

CREATE EXTENSION IF NOT EXISTS btree_gist;

DO $$
DECLARE
    v_pairs text;
    v_count integer;
BEGIN
    SELECT count(*), string_agg(format('%s (customer %s, %s) and %s (customer %s, %s)',
                                       a.name, ca.name, a.ip, b.name, cb.name, b.ip), '; ' ORDER BY a.id, b.id)
      INTO v_count, v_pairs
      FROM billing.endpoints a
      JOIN billing.endpoints b ON b.id > a.id AND b.auth = 'ip' AND b.ip && a.ip
                              AND (b.customer_id <> a.customer_id OR b.ip = a.ip)
      JOIN billing.customers ca ON ca.id = a.customer_id
      JOIN billing.customers cb ON cb.id = b.customer_id
     WHERE a.auth = 'ip';
    IF v_count > 0 THEN
        RAISE EXCEPTION 'migration 0090: % pair(s) of IP endpoints overlap across customers or repeat the same range: %',
                        v_count, v_pairs
            USING ERRCODE = 'exclusion_violation',
                  HINT = 'An IP range may belong to one customer only, and one range to one endpoint. Change the '
                         'range of one endpoint of each pair (or delete it) in the back office, then run '
                         '"flask --app wsgi db upgrade" again. Nothing was changed.';
    END IF;
END $$;

ALTER TABLE billing.endpoints ADD CONSTRAINT ex_endpoints_ip_one_customer
    EXCLUDE USING gist (ip inet_ops WITH &&, customer_id WITH <>) WHERE (auth = 'ip');

CREATE UNIQUE INDEX uq_endpoints_ip ON billing.endpoints (ip) WHERE auth = 'ip';
