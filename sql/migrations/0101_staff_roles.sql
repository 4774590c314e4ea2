-- 0101 staff roles (issue 12, item 9): besides `admin` (everything), `finance` (money,
-- invoices, reports; no routing) and `support` (read-only, looks up customers' calls).
-- Which back-office page each role may use is decided in portal/admin/access.py.
ALTER TABLE billing.users
    DROP CONSTRAINT ck_users_role,
    DROP CONSTRAINT ck_users_role_customer,
    ADD CONSTRAINT ck_users_role CHECK (role IN ('admin', 'finance', 'support', 'customer')),
    ADD CONSTRAINT ck_users_role_customer CHECK ((role = 'customer') = (customer_id IS NOT NULL));
