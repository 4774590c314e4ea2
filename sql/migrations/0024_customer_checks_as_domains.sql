-- 0024 CDR billing performance: the customer row's CHECK constraints stop costing
-- every debit.
--
-- Every billed CDR updates its customer's balance (ledger trigger). PostgreSQL checks
-- all CHECK constraints of a table on every UPDATE, whichever columns change, and it
-- reads each one from its stored node tree and compiles it again at every statement:
-- the eight constraints of billing.customers cost ~380,000 instructions per CDR, 14 %
-- of a CDR's server CPU (230,000 of them the name's {1,64} regular expression), to
-- re-check a name, an e-mail address, a strategy ... that the debit never touches
-- (callgrind, docs/performance-cdr.md).
--
-- Same rules, checked only when the column is written:
-- * the single-column rules become domains, with the same constraint names (an error
--   still names ck_customers_name etc., SQLSTATE 23514). A domain's constraints are
--   checked when a value is written to the column and are compiled once per
--   connection, not per statement; an UPDATE of balance writes none of these columns.
-- * ck_customers_prepaid_no_credit, which spans two columns, becomes a BEFORE trigger
--   on INSERT and on UPDATE OF billing_type, credit_limit that raises the same error
--   (check_violation, constraint ck_customers_prepaid_no_credit), so the portal's and
--   the provisioning loader's messages for it are unchanged.
-- billing.endpoint_month_spend, whose amount every billed CDR adds to, gets the same
-- treatment for its one CHECK (a month is stored as its first day).
-- Both tables are rewritten once (a row per customer, a row per endpoint and month).
-- The other tables a CDR writes keep their CHECKs (one each): cdr, fs_cdr and ledger
-- grow with every call, and changing a column's type would rewrite them.
CREATE DOMAIN billing.customer_name AS text
    CONSTRAINT ck_customers_name CHECK (VALUE ~ '^[A-Za-z0-9_.-]{1,64}$');
CREATE DOMAIN billing.customer_billing_type AS text
    CONSTRAINT ck_customers_billing_type CHECK (VALUE IN ('prepaid', 'postpaid'));
-- billing.money's definition (a domain over a domain would hide the numeric type)
CREATE DOMAIN billing.customer_credit_limit AS numeric(20, 6)
    CONSTRAINT ck_customers_credit_limit CHECK (VALUE >= 0);
CREATE DOMAIN billing.customer_max_calls AS integer
    CONSTRAINT ck_customers_max_calls CHECK (VALUE >= 0);
CREATE DOMAIN billing.lcr_strategy AS text
    CONSTRAINT ck_customers_lcr_strategy CHECK (VALUE IN ('cost', 'quality', 'reliability', 'equal', 'priority'));
CREATE DOMAIN billing.customer_email AS text
    CONSTRAINT ck_customers_email CHECK (VALUE ~ '^[^@\s]+@[^@\s]+$');
CREATE DOMAIN billing.tax_rate AS numeric(6, 4)
    CONSTRAINT ck_customers_tax_rate CHECK (VALUE >= 0 AND VALUE < 1);

ALTER TABLE billing.customers
    DROP CONSTRAINT ck_customers_name,
    DROP CONSTRAINT ck_customers_billing_type,
    DROP CONSTRAINT ck_customers_credit_limit,
    DROP CONSTRAINT ck_customers_max_calls,
    DROP CONSTRAINT ck_customers_lcr_strategy,
    DROP CONSTRAINT ck_customers_email,
    DROP CONSTRAINT ck_customers_tax_rate,
    DROP CONSTRAINT ck_customers_prepaid_no_credit,
    ALTER COLUMN name TYPE billing.customer_name,
    ALTER COLUMN billing_type TYPE billing.customer_billing_type,
    ALTER COLUMN credit_limit TYPE billing.customer_credit_limit,
    ALTER COLUMN max_calls TYPE billing.customer_max_calls,
    ALTER COLUMN lcr_strategy TYPE billing.lcr_strategy,
    ALTER COLUMN email TYPE billing.customer_email,
    ALTER COLUMN tax_rate TYPE billing.tax_rate;

CREATE DOMAIN billing.month_start AS date
    CONSTRAINT ck_endpoint_month_spend_month CHECK (VALUE = date_trunc('month', VALUE)::date);
ALTER TABLE billing.endpoint_month_spend
    DROP CONSTRAINT ck_endpoint_month_spend_month,
    ALTER COLUMN month TYPE billing.month_start;

CREATE FUNCTION billing_private.tg_customers__prepaid_no_credit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (NEW.billing_type = 'postpaid' OR NEW.credit_limit = 0) THEN
        RAISE EXCEPTION 'new row for relation "customers" violates check constraint "ck_customers_prepaid_no_credit"'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_customers_prepaid_no_credit',
                  SCHEMA = 'billing', TABLE = 'customers',
                  DETAIL = 'A prepaid customer cannot have a credit limit.';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tg_customers__prepaid_no_credit BEFORE INSERT OR UPDATE OF billing_type, credit_limit
    ON billing.customers
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_customers__prepaid_no_credit();

-- A column's type change drops its statistics.
ANALYZE billing.customers, billing.endpoint_month_spend;
