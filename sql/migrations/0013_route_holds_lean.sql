-- 0013 route_call performance: a hold is cheaper to write.
--
-- billing.call_holds rows live for the length of a call: route_call writes one per
-- call, CDR billing deletes it, the stale-hold sweeper deletes the rest. Writing one
-- cost ~40 % of a call (docs/performance-route.md), a good part of it in
-- * the two foreign-key checks, which lock the customer row (already locked by
--   route_call) and the endpoint row FOR KEY SHARE: a tuple lock, a dirtied page and
--   a WAL record on endpoints at every call;
-- * ix_call_holds_expires_at, a fourth index to update. The sweeper's
--   `DELETE ... WHERE expires_at < now()` reads a table of calls in progress (small,
--   hot) and runs once a minute: a sequential scan serves it.
-- route_call reads the customer and endpoint it writes, under the customer's row
-- lock, so the keys are valid when written. What ON DELETE CASCADE did (deleting a
-- customer or endpoint deletes its holds) is kept by AFTER DELETE triggers, which cost
-- nothing at call set-up.
ALTER TABLE billing.call_holds DROP CONSTRAINT fk_call_holds_customer_id_customers;
ALTER TABLE billing.call_holds DROP CONSTRAINT fk_call_holds_endpoint_id_endpoints;
DROP INDEX billing.ix_call_holds_expires_at;

CREATE FUNCTION billing_private.call_holds_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        DELETE FROM billing.call_holds h WHERE h.customer_id = OLD.id;
    ELSE
        DELETE FROM billing.call_holds h WHERE h.endpoint_id = OLD.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tg_customers__call_holds_cascade AFTER DELETE ON billing.customers
    FOR EACH ROW EXECUTE FUNCTION billing_private.call_holds_cascade();
CREATE TRIGGER tg_endpoints__call_holds_cascade AFTER DELETE ON billing.endpoints
    FOR EACH ROW EXECUTE FUNCTION billing_private.call_holds_cascade();
