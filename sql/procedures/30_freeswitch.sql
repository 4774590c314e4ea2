-- What FreeSWITCH reads besides billing.route_call: the SIP directory, the carrier
-- gateways, the ACL of IP-authenticated endpoints, and the per-call media options.
--
-- Every function here is SECURITY DEFINER (runs as the owner) because the
-- billing_freeswitch role may SELECT no table: each returns only what FreeSWITCH's
-- XML or route.lua needs, for exactly the key it is asked about. search_path is pinned
-- so a caller cannot shadow the tables. Callers: freeswitch/scripts/billing/*.lua.
-- Grants: sql/procedures/zz_grants.sql.

-- directory_user: the SIP digest credentials of one endpoint with `auth: sip`.
-- Inputs: p_user = SIP user name, p_domain = the realm FreeSWITCH asks about; answers
-- only when p_domain is billing.settings.sip_domain (case-insensitive) and both the
-- endpoint and its customer are enabled. a1_hash = md5(user:realm:password), the value
-- of the directory's `a1-hash` param; the password itself never leaves the database.
-- Cost: uq_endpoints_username (unique index) + customers by pk + the one settings row.
CREATE OR REPLACE FUNCTION billing.directory_user(p_user text, p_domain text)
RETURNS TABLE (
    username      text,
    realm         text,
    a1_hash       text,
    endpoint_id   bigint,
    customer_id   bigint,
    endpoint_name text,
    customer_name text,
    context       text,
    codecs        text,
    max_calls     integer
)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.username, s.sip_domain,
           md5(e.username || ':' || s.sip_domain || ':' || e.password),
           e.id, c.id, e.name, c.name, e.context, e.codecs, e.max_calls
      FROM billing.endpoints e
      JOIN billing.customers c ON c.id = e.customer_id
      CROSS JOIN billing.settings s
     WHERE e.username = p_user
       AND e.auth = 'sip'
       AND e.enabled AND c.enabled
       AND lower(s.sip_domain) = lower(p_domain)
$$;

-- sofia_gateways: the gateways of enabled providers, for the sofia profile named
-- p_profile. Only the profile 'carriers' has gateways; any other name gets no rows
-- (so FreeSWITCH's static XML for other profiles stays in charge).
-- Cost: one scan of gateways joined to providers by pk (tens to hundreds of rows, read
-- at `sofia profile carriers rescan` time, never during a call).
CREATE OR REPLACE FUNCTION billing.sofia_gateways(p_profile text)
RETURNS TABLE (
    gateway        text,
    provider_id    bigint,
    provider_name  text,
    host           text,
    port           integer,
    transport      text,
    register       boolean,
    username       text,
    password       text,
    codecs         text,
    max_channels   integer
)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.name, p.id, p.name, g.host, g.port, g.transport, g.register,
           g.username, g.password, g.codecs, g.max_channels
      FROM billing.gateways g
      JOIN billing.providers p ON p.id = g.provider_id
     WHERE p_profile = 'carriers'
       AND g.enabled AND p.enabled
     ORDER BY g.name
$$;

-- acl_networks: the source networks of enabled IP-authenticated endpoints of enabled
-- customers, for the ACL list p_list (only 'billing_customers' has entries). The sofia
-- profile `customers` lets these sources call without digest authentication; the
-- endpoint is then identified by route_call from the same address.
-- Cost: one scan of endpoints (auth = 'ip'), read at `reloadacl` time only.
CREATE OR REPLACE FUNCTION billing.acl_networks(p_list text)
RETURNS TABLE (cidr text, endpoint_name text)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT ON (e.ip) e.ip::text, e.name
      FROM billing.endpoints e
      JOIN billing.customers c ON c.id = e.customer_id
     WHERE p_list = 'billing_customers'
       AND e.auth = 'ip' AND e.ip IS NOT NULL
       AND e.enabled AND c.enabled
     ORDER BY e.ip, e.name
$$;

-- route_options: media and capacity options route.lua applies around each bridge,
-- joined to route_call's rows in the same query (still one round trip per call):
--   SELECT r.*, o.* FROM billing.route_call(...) r
--     LEFT JOIN LATERAL billing.route_options(r.endpoint_id, r.gateway) o ON true
-- Either input may be NULL (a rejected call has neither); the answer is then one row
-- whose corresponding columns are NULL. Column names are prefixed so they never
-- collide with route_call's (FreeSWITCH's row tables keep the last duplicate).
-- opt_ring_timeout / opt_reauth_margin come from the settings (CONTRACT 1b): how long
-- one route may ring (route.lua's call_timeout: the set-up time a hold is made to
-- outlive) and how many seconds before a grant runs out the switch asks for the next.
-- Cost: endpoints by pk + uq_gateways_name + the settings row.
CREATE OR REPLACE FUNCTION billing.route_options(p_endpoint_id bigint, p_gateway text)
RETURNS TABLE (
    opt_endpoint_codecs             text,
    opt_endpoint_bypass_media       boolean,
    opt_endpoint_ignore_early_media boolean,
    opt_gateway_max_channels        integer,
    opt_gateway_bypass_media        boolean,
    opt_gateway_ignore_early_media  boolean,
    opt_ring_timeout                integer,
    opt_reauth_margin               integer
)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 1                                  -- one row, always (route_decide's ROWS 10 says why)
SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.codecs, e.bypass_media, e.ignore_early_media,
           g.max_channels, g.bypass_media, g.ignore_early_media,
           s.ring_timeout_seconds, s.reauth_margin_seconds
      FROM (SELECT 1) AS one
      LEFT JOIN billing.endpoints e ON e.id = p_endpoint_id
      LEFT JOIN billing.gateways g ON g.name = p_gateway
      LEFT JOIN billing.settings s ON s.id
$$;

-- tg_fs_cdr__align_stamps: mod_cdr_pg_csv sends *_stamp as the switch's local time
-- without a zone, which PostgreSQL reads in the session's zone. The *_epoch columns
-- (sent by freeswitch/conf/autoload_configs/cdr_pg_csv.conf.xml) are zone-free: when
-- present they decide the stamps, before the billing trigger (tg_fs_cdr__bill, which
-- sorts after this one: BEFORE triggers fire in name order) rates the call.
-- answer_epoch 0 means "never answered". Cost: arithmetic on the new row only.
CREATE OR REPLACE FUNCTION billing_private.tg_fs_cdr__align_stamps()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.start_epoch > 0 THEN
        NEW.start_stamp := to_timestamp(NEW.start_epoch);
    END IF;
    IF NEW.end_epoch > 0 THEN
        NEW.end_stamp := to_timestamp(NEW.end_epoch);
    END IF;
    IF NEW.answer_epoch > 0 THEN
        NEW.answer_stamp := to_timestamp(NEW.answer_epoch);
    ELSIF NEW.answer_epoch = 0 THEN
        NEW.answer_stamp := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER tg_fs_cdr__align_stamps BEFORE INSERT ON billing.fs_cdr
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_fs_cdr__align_stamps();
