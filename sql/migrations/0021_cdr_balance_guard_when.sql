-- 0021: the balance guard on billing.customers decides in its WHEN clause, without
-- calling PL/pgSQL. The rule is unchanged: a direct UPDATE of customers.balance is
-- refused; the update made by the ledger trigger (tg_ledger__apply) passes. The
-- guard function used to test pg_trigger_depth() = 1 inside itself (its own depth);
-- in WHEN the guard has not started yet, so the same test reads pg_trigger_depth() = 0.
-- Every CDR debit (ledger insert -> customer update) used to pay one PL/pgSQL call
-- for nothing: ~30-50 us of server CPU per billed CDR (docs/performance-cdr.md).
DROP TRIGGER tg_customers__balance_guard ON billing.customers;
CREATE TRIGGER tg_customers__balance_guard BEFORE UPDATE OF balance ON billing.customers
    FOR EACH ROW WHEN (OLD.balance IS DISTINCT FROM NEW.balance AND pg_trigger_depth() = 0)
    EXECUTE FUNCTION billing_private.tg_customers__balance_guard();
