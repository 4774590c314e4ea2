-- 0061: the CDR browser's "destination prefix" filter (destination LIKE '4412%').
-- Without this index a rare prefix walks the start_stamp index backwards until it
-- has found a page (hundreds of thousands of rows on a 10M-row table); with it the
-- matching rows are fetched directly and only they are sorted. text_pattern_ops
-- makes LIKE 'prefix%' indexable whatever the database collation. One more btree
-- entry per rated call: cheap next to the rest of CDR billing.
CREATE INDEX ix_cdr_destination_pattern ON billing.cdr (destination text_pattern_ops);
