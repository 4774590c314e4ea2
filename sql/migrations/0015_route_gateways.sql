-- 0015 route_call performance: the routable gateways in one small table.
--
-- route_call expands each provider that has a rate into its enabled gateways, with
-- the provider's priority. Joining gateways and providers at every call built two
-- hash tables for ~100 rows each time; billing_private.route_gateways holds that join
-- already made (enabled gateways of enabled providers), so a call joins one table
-- (docs/performance-route.md). Gateways and providers are configuration and change
-- rarely: statement-level triggers rebuild the whole table (one row per gateway)
-- after any write to them, in the writer's transaction, so a call sees exactly what
-- it would have seen joining the two tables.
-- gateway_stats is not in it: CDR billing updates it at every CDR, and a rebuild per
-- CDR would serialise CDR billing on this table. route_call joins it only for the
-- strategies that use it (quality, reliability).
CREATE TABLE billing_private.route_gateways (
    gateway_id         bigint CONSTRAINT pk_route_gateways PRIMARY KEY,
    provider_id        bigint NOT NULL,
    name               text NOT NULL,
    priority           integer NOT NULL,
    strip_digits       integer NOT NULL,
    add_prefix         text NOT NULL,
    provider_priority  integer NOT NULL
);

CREATE FUNCTION billing_private.route_gateways_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- one rebuild at a time: a second one waits, then sees the first's rows
    LOCK TABLE billing_private.route_gateways IN EXCLUSIVE MODE;
    DELETE FROM billing_private.route_gateways;
    INSERT INTO billing_private.route_gateways
           (gateway_id, provider_id, name, priority, strip_digits, add_prefix, provider_priority)
    SELECT g.id, g.provider_id, g.name, g.priority, g.strip_digits, g.add_prefix, p.priority
      FROM billing.gateways g
      JOIN billing.providers p ON p.id = g.provider_id
     WHERE p.enabled AND g.enabled;
END $$;

CREATE FUNCTION billing_private.route_gateways_rebuild_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing_private.route_gateways_rebuild();
    RETURN NULL;
END $$;

CREATE TRIGGER tg_gateways__route_gateways AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.gateways
    FOR EACH STATEMENT EXECUTE FUNCTION billing_private.route_gateways_rebuild_trigger();
CREATE TRIGGER tg_providers__route_gateways AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.providers
    FOR EACH STATEMENT EXECUTE FUNCTION billing_private.route_gateways_rebuild_trigger();

SELECT billing_private.route_gateways_rebuild();
ANALYZE billing_private.route_gateways;
