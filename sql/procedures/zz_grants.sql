-- Grants, re-applied after every upgrade (this file sorts last).
--
-- PostgreSQL lets PUBLIC execute every new function; in this product only the
-- roles named here may execute anything in billing / billing_private.
--
-- billing_freeswitch (the switch) may:
--   * EXECUTE billing.route_call            -- call set-up (CONTRACT 1)
--   * INSERT  billing.fs_cdr                 -- CDRs (CONTRACT 2)
--   * EXECUTE billing.directory_user / billing.sofia_gateways / billing.acl_networks,
--     the read-only SECURITY DEFINER functions behind the Lua xml_handler (SIP
--     directory, carrier gateways, ACL of IP endpoints); they return only what
--     FreeSWITCH's XML needs.
--   * EXECUTE billing.route_options, read-only SECURITY DEFINER: the media options
--     and channel limit of one endpoint / gateway, joined to route_call's rows.
--   * EXECUTE billing.reauthorize_call (CONTRACT 1b: another quota of credit for a call
--     in progress) and billing.release_call (the hold of a call that ended before its
--     set-up answer was used).
-- and nothing else: no SELECT on any table, no UPDATE, no DELETE.
-- This file embeds its own checksum-worthy text only; re-applied whenever it or any
-- procedure changes (see sql/README.md).

REVOKE ALL ON SCHEMA billing, billing_private FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA billing FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA billing_private FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA billing FROM billing_freeswitch;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA billing FROM billing_freeswitch;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA billing_private FROM billing_freeswitch;

GRANT USAGE ON SCHEMA billing TO billing_freeswitch;
GRANT INSERT ON billing.fs_cdr TO billing_freeswitch;

DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'billing'
           AND p.proname IN ('route_call', 'directory_user', 'sofia_gateways', 'acl_networks', 'route_options',
                             'reauthorize_call', 'release_call')
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO billing_freeswitch', v_fn);
    END LOOP;
END $$;
