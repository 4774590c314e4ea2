-- 0015 route_call performance: the routable gateways in one small table.
--
-- route_call expands each provider that has a rate into its enabled gateways, with
-- the provider's priority and the gateway's statistics for the strategies. Joining
-- gateways, providers and gateway_stats at every call built three hash tables for
-- ~100 rows each time; billing_private.route_gateways holds that join already made
-- (enabled gateways of enabled providers), so a call joins one table
-- (docs/performance-route.md). These tables change rarely (configuration, and the
-- gateway statistics refresh): statement-level triggers rebuild the whole table
-- (one row per gateway) after any write to them, in the writer's transaction, so a
-- call sees exactly what it would have seen joining the three tables.
CREATE TABLE billing_private.route_gateways (
    gateway_id         bigint CONSTRAINT pk_route_gateways PRIMARY KEY,
    provider_id        bigint NOT NULL,
    name               text NOT NULL,
    priority           integer NOT NULL,
    strip_digits       integer NOT NULL,
    add_prefix         text NOT NULL,
    provider_priority  integer NOT NULL,
    asr                numeric NULL,
    acd                numeric NULL
);

CREATE FUNCTION billing_private.route_gateways_rebuild() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- one rebuild at a time: a second one waits, then sees the first's rows
    LOCK TABLE billing_private.route_gateways IN EXCLUSIVE MODE;
    DELETE FROM billing_private.route_gateways;
    INSERT INTO billing_private.route_gateways
           (gateway_id, provider_id, name, priority, strip_digits, add_prefix, provider_priority, asr, acd)
    SELECT g.id, g.provider_id, g.name, g.priority, g.strip_digits, g.add_prefix, p.priority, gs.asr, gs.acd
      FROM billing.gateways g
      JOIN billing.providers p ON p.id = g.provider_id
      LEFT JOIN billing.gateway_stats gs ON gs.gateway_id = g.id
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
CREATE TRIGGER tg_gateway_stats__route_gateways AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.gateway_stats
    FOR EACH STATEMENT EXECUTE FUNCTION billing_private.route_gateways_rebuild_trigger();

SELECT billing_private.route_gateways_rebuild();
ANALYZE billing_private.route_gateways;
