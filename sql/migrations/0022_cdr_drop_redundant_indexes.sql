-- 0022: every index on the partitioned billing.cdr is one more btree insertion per
-- CDR. Migration 0060 added (start_stamp, id) and (customer_id, start_stamp, id) for
-- the CDR browser's keyset pages; they serve every query the two older indexes served
-- (same leading columns), so those are dropped:
--   ix_cdr_start_stamp              -> ix_cdr_start_stamp_id
--   ix_cdr_customer_id_start_stamp  -> ix_cdr_customer_id_start_stamp_id
-- Kept: pk_cdr (id, start_stamp), ix_cdr_provider_id_start_stamp (provider reports),
-- ix_cdr_uuid (re-rating, lookups by call), ix_cdr_destination_pattern (0061), and the
-- two of 0060. On a new database this runs before 0060 creates the replacements;
-- there is no traffic in between.
DROP INDEX IF EXISTS billing.ix_cdr_start_stamp;
DROP INDEX IF EXISTS billing.ix_cdr_customer_id_start_stamp;
