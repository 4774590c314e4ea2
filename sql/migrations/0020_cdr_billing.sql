-- 0020: indexes for CDR billing.
-- Re-rating selects raw CDRs by period (start_stamp; rows without one by received_at,
-- which ix_fs_cdr_unrated already covers for the unrated ones) and optionally customer.
CREATE INDEX ix_fs_cdr_start_stamp ON billing.fs_cdr (start_stamp);
