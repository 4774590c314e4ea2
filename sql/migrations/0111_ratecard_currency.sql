-- 0111 a customer's ratecards are in the customer's currency.
--
-- The sell rate is "per minute, customer's currency" (CONTRACT 1): holds, charges and
-- the ledger use it as is, and only the cost side is converted (0110). A USD ratecard
-- on a EUR customer would debit dollars from a euro balance. These triggers refuse
-- writes that would create such a pair (linking a ratecard, changing a customer's or a
-- ratecard's currency), with the constraint name ck_customer_ratecards_currency so the
-- portal and the provisioning loader can say what is wrong. Pairs that already exist
-- are left alone (a migration must not fail on old data); list them with
--   SELECT cu.name, rc.name, cu.currency, rc.currency FROM billing.customer_ratecards cr
--     JOIN billing.customers cu ON cu.id = cr.customer_id
--     JOIN billing.ratecards rc ON rc.id = cr.ratecard_id WHERE rc.currency <> cu.currency;
-- Cost: one join per changed row of these configuration tables, at commit; nothing
-- at call time (the ledger's balance updates do not name the currency column).

CREATE FUNCTION billing_private.tg_customer_ratecards__currency() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_customer_id bigint;    -- the rows whose pairs are checked (NULL = any)
    v_ratecard_id bigint;
    v_customer text;
    v_ratecard text;
    v_customer_currency text;
    v_ratecard_currency text;
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        v_customer_id := NEW.id;
    ELSIF TG_TABLE_NAME = 'ratecards' THEN
        v_ratecard_id := NEW.id;
    ELSE
        v_customer_id := NEW.customer_id;
        v_ratecard_id := NEW.ratecard_id;
    END IF;
    SELECT cu.name, rc.name, cu.currency, rc.currency
      INTO v_customer, v_ratecard, v_customer_currency, v_ratecard_currency
      FROM billing.customer_ratecards cr
      JOIN billing.customers cu ON cu.id = cr.customer_id
      JOIN billing.ratecards rc ON rc.id = cr.ratecard_id
     WHERE rc.currency <> cu.currency
       AND (v_customer_id IS NULL OR cr.customer_id = v_customer_id)
       AND (v_ratecard_id IS NULL OR cr.ratecard_id = v_ratecard_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ratecard % is in %, customer % pays in %: a customer''s ratecards must be in its currency',
                        v_ratecard, v_ratecard_currency, v_customer, v_customer_currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_customer_ratecards_currency';
    END IF;
    RETURN NULL;
END $$;

-- Constraint triggers checked at commit: a transaction may change a customer's
-- currency and its ratecards in either order (the provisioning loader does).
CREATE CONSTRAINT TRIGGER tg_customer_ratecards__currency AFTER INSERT OR UPDATE ON billing.customer_ratecards
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_customer_ratecards__currency();
CREATE CONSTRAINT TRIGGER tg_customers__ratecard_currency AFTER UPDATE OF currency ON billing.customers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION billing_private.tg_customer_ratecards__currency();
CREATE CONSTRAINT TRIGGER tg_ratecards__customer_currency AFTER UPDATE OF currency ON billing.ratecards
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION billing_private.tg_customer_ratecards__currency();
