-- 0023: room in every billing.cdr page for one re-rate of all its calls.
--
-- A re-rate that changes every call of a month (a general price change) updates every
-- billing.cdr row. When the row's page is full, the new version goes to another page:
-- six index insertions per row (one per index of the partition) and twice the pages
-- written -- 138 s for a million calls against 52 s when nothing changes
-- (docs/performance-cdr.md). With fillfactor 50, inserts (the CDR trigger, COPY)
-- leave half of each page free, so the re-rate's new versions fit next to the old ones
-- and are HOT: no index insertion (no indexed column changes) and old versions are
-- pruned in place for the next re-rate.
-- Trade-off: the heap of billing.cdr takes about twice the space (the indexes do not
-- change); live CDR inserts are not measurably slower (the trigger's CPU per CDR is the
-- same; docs/performance-cdr.md, 2026-11-22).
-- Partitions created from now on get the setting from create_cdr_partition
-- (22_billing_maintenance.sql; `billing.cdr_fillfactor` overrides it, e.g.
-- ALTER DATABASE ... SET billing.cdr_fillfactor = 100 to keep pages full). Existing
-- partitions get it here: it applies to the pages written from now on (the rest of the
-- current month, future months already created); full past months keep their pages
-- until rewritten (docs/billing.md, "Re-rating"). A partitioned table cannot carry
-- storage parameters itself in PostgreSQL 15, hence one ALTER per partition.
-- ALTER TABLE ... SET (fillfactor) takes SHARE UPDATE EXCLUSIVE: CDR inserts go on.
DO $$
DECLARE
    v_part regclass;
BEGIN
    FOR v_part IN SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'billing.cdr'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', v_part);
    END LOOP;
END $$;
