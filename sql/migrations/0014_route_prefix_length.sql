-- 0014 route_call performance: the longest prefix in use.
--
-- route_call finds longest prefixes with `prefix = ANY(every prefix of the number)`:
-- one btree probe per prefix length, 11 for an 11-digit number, in four lookups
-- (destinations, sell rates, provider rates, routing rules). Real prefixes are much
-- shorter than numbers (6 digits in the benchmark data), so it probes only the
-- lengths up to billing_private.prefix_lengths.longest.
--
-- `longest` is an upper bound, never too small: statement-level triggers raise it when
-- a statement writes a longer prefix into one of the four tables (COPY included); it
-- is never lowered (deleting the longest prefix leaves a few useless probes, not a
-- wrong answer). Cost for writers: one max() over the statement's new rows; the row
-- is updated only when a longer prefix appears.
CREATE TABLE billing_private.prefix_lengths (
    id       boolean CONSTRAINT pk_prefix_lengths PRIMARY KEY DEFAULT true CONSTRAINT ck_prefix_lengths_single_row CHECK (id),
    longest  integer NOT NULL
);
INSERT INTO billing_private.prefix_lengths (longest)
SELECT coalesce(max(l), 0) FROM (
    SELECT max(length(prefix)) FROM billing.destinations
    UNION ALL SELECT max(length(prefix)) FROM billing.rates
    UNION ALL SELECT max(length(prefix)) FROM billing.provider_rates
    UNION ALL SELECT max(length(prefix)) FROM billing.routing_rules) m(l);
ANALYZE billing_private.prefix_lengths;

CREATE FUNCTION billing_private.prefix_lengths_grow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE billing_private.prefix_lengths p SET longest = n.longest
      FROM (SELECT max(length(prefix)) AS longest FROM new_rows) n
     WHERE n.longest > p.longest;
    RETURN NULL;
END $$;

-- tg_<table>__prefix_lengths_insert / _update on each of the four tables
DO $$
DECLARE
    v_table text;
    v_event text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['destinations', 'rates', 'provider_rates', 'routing_rules'] LOOP
        FOREACH v_event IN ARRAY ARRAY['insert', 'update'] LOOP
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON billing.%I REFERENCING NEW TABLE AS new_rows '
                           'FOR EACH STATEMENT EXECUTE FUNCTION billing_private.prefix_lengths_grow()',
                           'tg_' || v_table || '__prefix_lengths_' || v_event, upper(v_event), v_table);
        END LOOP;
    END LOOP;
END $$;
