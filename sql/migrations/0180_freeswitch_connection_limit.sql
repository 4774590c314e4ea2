-- A ceiling on the switches' database connections, kept by the server.
--
-- FreeSWITCH's max-db-handles (billing_max_db_handles) is checked before a new
-- connection is opened, not together with it: when the switch's CPU is saturated,
-- connections open slowly and many threads pass the check at once. Measured with
-- bench/switch.py past the knee of a 2-core machine, the switch's connections climbed
-- to 94 of the server's 100 (docs/scaling-switches.md), starving the portal, and each
-- call paid for a fresh backend. With a limit on the role, a connection beyond it is
-- refused at once ("too many connections for role"): that call set-up fails closed
-- (503, Retry-After) and everyone else keeps working.
--
-- 64 = three switches × (billing_max_db_handles 20 + mod_cdr_pg_csv's 1) + 1. With
-- more switches or more handles, raise it (docs/scaling-switches.md, "Connections"):
--     ALTER ROLE billing_freeswitch CONNECTION LIMIT <N × (handles + 1) + 1>;
-- The role is shared by every database of the server: a limit set by the operator
-- (anything but -1, "no limit") is kept.
DO $$
BEGIN
    IF (SELECT rolconnlimit FROM pg_roles WHERE rolname = 'billing_freeswitch') = -1 THEN
        ALTER ROLE billing_freeswitch CONNECTION LIMIT 64;
    END IF;
END $$;
