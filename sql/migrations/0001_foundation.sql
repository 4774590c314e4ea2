-- 0001 foundation: the configuration the routing needs (PROVISIONING.md), money
-- (ledger, holds), CDRs (raw fs_cdr from FreeSWITCH, rated cdr partitioned by month),
-- portal users, audit log and settings.
--
-- Conventions: every table lives in schema `billing`; internals (helper functions
-- not meant for callers) in `billing_private`. Money is `numeric`, never float.
-- Prefixes are digit strings. Constraint names follow the ORM naming convention
-- (pk_, fk_, uq_, ck_, ix_).

CREATE SCHEMA IF NOT EXISTS billing;
CREATE SCHEMA IF NOT EXISTS billing_private;

-- A domain for prefixes and digit strings keeps the rule in one place.
CREATE DOMAIN billing.digits AS text CHECK (VALUE ~ '^[0-9]{1,20}$');
CREATE DOMAIN billing.digits_or_empty AS text CHECK (VALUE ~ '^[0-9]{0,20}$');
CREATE DOMAIN billing.money AS numeric(20, 6);
CREATE DOMAIN billing.rate AS numeric(14, 6) CHECK (VALUE >= 0);
CREATE DOMAIN billing.currency AS text CHECK (VALUE ~ '^[A-Z]{3}$');

-- Settings: one typed row, read inside call set-up, so no key/value parsing there.
CREATE TABLE billing.settings (
    id                     boolean PRIMARY KEY DEFAULT true CONSTRAINT ck_settings_single_row CHECK (id),
    currency               billing.currency NOT NULL DEFAULT 'EUR',
    max_call_seconds       integer NOT NULL DEFAULT 14400 CONSTRAINT ck_settings_max_call_seconds CHECK (max_call_seconds BETWEEN 1 AND 604800),
    sip_domain             text NOT NULL DEFAULT 'sip.example.net' CONSTRAINT ck_settings_sip_domain CHECK (sip_domain ~ '^[A-Za-z0-9.-]{1,253}$'),
    hold_grace_seconds     integer NOT NULL DEFAULT 300 CONSTRAINT ck_settings_hold_grace CHECK (hold_grace_seconds >= 0),
    default_tax_rate       numeric(6, 4) NOT NULL DEFAULT 0 CONSTRAINT ck_settings_tax CHECK (default_tax_rate >= 0 AND default_tax_rate < 1),
    low_balance_default    billing.money NULL,
    company_name           text NOT NULL DEFAULT 'Example Telecom',
    company_address        text NOT NULL DEFAULT '',
    company_vat_id         text NOT NULL DEFAULT '',
    company_email          text NOT NULL DEFAULT 'billing@example.net',
    invoice_footer         text NOT NULL DEFAULT '',
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO billing.settings (id) VALUES (true);

-- Destination classes ("weights" in FBilling) and permissions (sets of weights).
CREATE TABLE billing.weights (
    id    bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_weights PRIMARY KEY,
    name  text NOT NULL CONSTRAINT uq_weights_name UNIQUE CONSTRAINT ck_weights_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$')
);

CREATE TABLE billing.permissions (
    id    bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_permissions PRIMARY KEY,
    name  text NOT NULL CONSTRAINT uq_permissions_name UNIQUE CONSTRAINT ck_permissions_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$')
);

CREATE TABLE billing.permission_weights (
    permission_id bigint NOT NULL CONSTRAINT fk_permission_weights_permission_id_permissions REFERENCES billing.permissions (id) ON DELETE CASCADE,
    weight_id     bigint NOT NULL CONSTRAINT fk_permission_weights_weight_id_weights REFERENCES billing.weights (id) ON DELETE RESTRICT,
    CONSTRAINT pk_permission_weights PRIMARY KEY (permission_id, weight_id)
);

-- Destination catalogue: longest prefix wins.
CREATE TABLE billing.destinations (
    id        bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_destinations PRIMARY KEY,
    prefix    billing.digits NOT NULL CONSTRAINT uq_destinations_prefix UNIQUE,
    name      text NOT NULL CONSTRAINT ck_destinations_name CHECK (length(name) BETWEEN 1 AND 200),
    weight_id bigint NOT NULL CONSTRAINT fk_destinations_weight_id_weights REFERENCES billing.weights (id) ON DELETE RESTRICT
);

-- Sell side.
CREATE TABLE billing.ratecards (
    id        bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_ratecards PRIMARY KEY,
    name      text NOT NULL CONSTRAINT uq_ratecards_name UNIQUE CONSTRAINT ck_ratecards_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    currency  billing.currency NOT NULL DEFAULT 'EUR'
);

-- Rates: per-minute price, billing increments `first/next` seconds, connect fee,
-- minimum duration, validity window [valid_from, valid_to) with NULL = open.
CREATE TABLE billing.rates (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_rates PRIMARY KEY,
    ratecard_id      bigint NOT NULL CONSTRAINT fk_rates_ratecard_id_ratecards REFERENCES billing.ratecards (id) ON DELETE CASCADE,
    prefix           billing.digits NOT NULL,
    rate             billing.rate NOT NULL,
    connect_fee      billing.rate NOT NULL DEFAULT 0,
    min_duration     integer NOT NULL DEFAULT 0 CONSTRAINT ck_rates_min_duration CHECK (min_duration >= 0),
    increment_first  integer NOT NULL DEFAULT 60 CONSTRAINT ck_rates_increment_first CHECK (increment_first > 0),
    increment_next   integer NOT NULL DEFAULT 60 CONSTRAINT ck_rates_increment_next CHECK (increment_next > 0),
    valid_from       timestamptz NULL,
    valid_to         timestamptz NULL,
    blocked          boolean NOT NULL DEFAULT false,
    CONSTRAINT ck_rates_validity CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from),
    CONSTRAINT uq_rates_ratecard_id_prefix_valid_from UNIQUE NULLS NOT DISTINCT (ratecard_id, prefix, valid_from)
);
CREATE INDEX ix_rates_ratecard_id_prefix ON billing.rates (ratecard_id, prefix);

-- Cost side.
CREATE TABLE billing.providers (
    id        bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_providers PRIMARY KEY,
    name      text NOT NULL CONSTRAINT uq_providers_name UNIQUE CONSTRAINT ck_providers_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    priority  integer NOT NULL DEFAULT 1,
    enabled   boolean NOT NULL DEFAULT true,
    currency  billing.currency NOT NULL DEFAULT 'EUR'
);

CREATE TABLE billing.gateways (
    id                  bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_gateways PRIMARY KEY,
    provider_id         bigint NOT NULL CONSTRAINT fk_gateways_provider_id_providers REFERENCES billing.providers (id) ON DELETE CASCADE,
    -- sofia gateway names end up in dial strings and XML: keep them plain.
    name                text NOT NULL CONSTRAINT uq_gateways_name UNIQUE CONSTRAINT ck_gateways_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    host                text NOT NULL CONSTRAINT ck_gateways_host CHECK (host ~ '^[A-Za-z0-9.:\[\]-]{1,253}$'),
    port                integer NOT NULL DEFAULT 5060 CONSTRAINT ck_gateways_port CHECK (port BETWEEN 1 AND 65535),
    transport           text NOT NULL DEFAULT 'udp' CONSTRAINT ck_gateways_transport CHECK (transport IN ('udp', 'tcp', 'tls')),
    max_channels        integer NULL CONSTRAINT ck_gateways_max_channels CHECK (max_channels > 0),
    priority            integer NOT NULL DEFAULT 1,
    strip_digits        integer NOT NULL DEFAULT 0 CONSTRAINT ck_gateways_strip_digits CHECK (strip_digits BETWEEN 0 AND 20),
    add_prefix          billing.digits_or_empty NOT NULL DEFAULT '',
    enabled             boolean NOT NULL DEFAULT true,
    codecs              text NULL CONSTRAINT ck_gateways_codecs CHECK (codecs ~ '^[A-Za-z0-9.@/,_-]{1,200}$'),
    username            text NULL CONSTRAINT ck_gateways_username CHECK (username ~ '^[A-Za-z0-9_.@+-]{1,64}$'),
    password            text NULL CONSTRAINT ck_gateways_password CHECK (length(password) BETWEEN 1 AND 128),
    register            boolean NOT NULL DEFAULT false,
    bypass_media        boolean NOT NULL DEFAULT false,
    ignore_early_media  boolean NOT NULL DEFAULT false,
    CONSTRAINT ck_gateways_register_needs_credentials CHECK (NOT register OR (username IS NOT NULL AND password IS NOT NULL))
);
CREATE INDEX ix_gateways_provider_id ON billing.gateways (provider_id);

CREATE TABLE billing.provider_rates (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_provider_rates PRIMARY KEY,
    provider_id      bigint NOT NULL CONSTRAINT fk_provider_rates_provider_id_providers REFERENCES billing.providers (id) ON DELETE CASCADE,
    prefix           billing.digits NOT NULL,
    rate             billing.rate NOT NULL,
    connect_fee      billing.rate NOT NULL DEFAULT 0,
    min_duration     integer NOT NULL DEFAULT 0 CONSTRAINT ck_provider_rates_min_duration CHECK (min_duration >= 0),
    increment_first  integer NOT NULL DEFAULT 60 CONSTRAINT ck_provider_rates_increment_first CHECK (increment_first > 0),
    increment_next   integer NOT NULL DEFAULT 60 CONSTRAINT ck_provider_rates_increment_next CHECK (increment_next > 0),
    valid_from       timestamptz NULL,
    valid_to         timestamptz NULL,
    blocked          boolean NOT NULL DEFAULT false,
    CONSTRAINT ck_provider_rates_validity CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from),
    CONSTRAINT uq_provider_rates_provider_id_prefix_valid_from UNIQUE NULLS NOT DISTINCT (provider_id, prefix, valid_from)
);
CREATE INDEX ix_provider_rates_prefix ON billing.provider_rates (prefix);

-- Customers. `balance` is a cache of sum(ledger.amount), maintained by the ledger
-- trigger in the same transaction; the ledger is the truth.
CREATE TABLE billing.customers (
    id                     bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_customers PRIMARY KEY,
    name                   text NOT NULL CONSTRAINT uq_customers_name UNIQUE CONSTRAINT ck_customers_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    enabled                boolean NOT NULL DEFAULT true,
    billing_type           text NOT NULL DEFAULT 'prepaid' CONSTRAINT ck_customers_billing_type CHECK (billing_type IN ('prepaid', 'postpaid')),
    balance                billing.money NOT NULL DEFAULT 0,
    credit_limit           billing.money NOT NULL DEFAULT 0 CONSTRAINT ck_customers_credit_limit CHECK (credit_limit >= 0),
    max_calls              integer NULL CONSTRAINT ck_customers_max_calls CHECK (max_calls >= 0),
    allow_negative_margin  boolean NOT NULL DEFAULT false,
    lcr_strategy           text NOT NULL DEFAULT 'cost' CONSTRAINT ck_customers_lcr_strategy CHECK (lcr_strategy IN ('cost', 'quality', 'reliability', 'equal', 'priority')),
    low_balance_alert      billing.money NULL,
    email                  text NULL CONSTRAINT ck_customers_email CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    currency               billing.currency NOT NULL DEFAULT 'EUR',
    tax_rate               numeric(6, 4) NULL CONSTRAINT ck_customers_tax_rate CHECK (tax_rate >= 0 AND tax_rate < 1),
    daily_balance_email    boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_customers_prepaid_no_credit CHECK (billing_type = 'postpaid' OR credit_limit = 0)
);

CREATE TABLE billing.customer_ratecards (
    customer_id  bigint NOT NULL CONSTRAINT fk_customer_ratecards_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    ratecard_id  bigint NOT NULL CONSTRAINT fk_customer_ratecards_ratecard_id_ratecards REFERENCES billing.ratecards (id) ON DELETE RESTRICT,
    priority     integer NOT NULL CONSTRAINT ck_customer_ratecards_priority CHECK (priority >= 1),
    CONSTRAINT pk_customer_ratecards PRIMARY KEY (customer_id, ratecard_id),
    CONSTRAINT uq_customer_ratecards_customer_id_priority UNIQUE (customer_id, priority)
);

-- Routing rules: for a customer and a prefix (longest rule wins, matched against the
-- canonical destination), only the listed providers may carry the call.
CREATE TABLE billing.routing_rules (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_routing_rules PRIMARY KEY,
    customer_id  bigint NOT NULL CONSTRAINT fk_routing_rules_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    prefix       billing.digits NOT NULL,
    CONSTRAINT uq_routing_rules_customer_id_prefix UNIQUE (customer_id, prefix)
);

CREATE TABLE billing.routing_rule_providers (
    routing_rule_id  bigint NOT NULL CONSTRAINT fk_routing_rule_providers_routing_rule_id_routing_rules REFERENCES billing.routing_rules (id) ON DELETE CASCADE,
    provider_id      bigint NOT NULL CONSTRAINT fk_routing_rule_providers_provider_id_providers REFERENCES billing.providers (id) ON DELETE CASCADE,
    CONSTRAINT pk_routing_rule_providers PRIMARY KEY (routing_rule_id, provider_id)
);

-- Endpoints: how a customer's traffic is recognised (source CIDR or SIP user).
-- SIP passwords are stored as given: the SIP digest a1-hash (md5(user:realm:pw)) is
-- password-equivalent for the realm, so hashing gains nothing and would break a change
-- of the SIP domain. Only SECURITY DEFINER directory functions expose them.
CREATE TABLE billing.endpoints (
    id                  bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_endpoints PRIMARY KEY,
    customer_id         bigint NOT NULL CONSTRAINT fk_endpoints_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    name                text NOT NULL CONSTRAINT uq_endpoints_name UNIQUE CONSTRAINT ck_endpoints_name CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    auth                text NOT NULL CONSTRAINT ck_endpoints_auth CHECK (auth IN ('ip', 'sip')),
    ip                  cidr NULL,
    username            text NULL CONSTRAINT uq_endpoints_username UNIQUE CONSTRAINT ck_endpoints_username CHECK (username ~ '^[A-Za-z0-9_.+-]{1,64}$'),
    password            text NULL CONSTRAINT ck_endpoints_password CHECK (length(password) BETWEEN 8 AND 128),
    permission_id       bigint NOT NULL CONSTRAINT fk_endpoints_permission_id_permissions REFERENCES billing.permissions (id) ON DELETE RESTRICT,
    max_calls           integer NULL CONSTRAINT ck_endpoints_max_calls CHECK (max_calls >= 0),
    strip_digits        integer NOT NULL DEFAULT 0 CONSTRAINT ck_endpoints_strip_digits CHECK (strip_digits BETWEEN 0 AND 20),
    add_prefix          billing.digits_or_empty NOT NULL DEFAULT '',
    spend_limit_month   billing.money NULL CONSTRAINT ck_endpoints_spend_limit CHECK (spend_limit_month >= 0),
    context             text NOT NULL DEFAULT 'default' CONSTRAINT ck_endpoints_context CHECK (context ~ '^[A-Za-z0-9_.-]{1,64}$'),
    codecs              text NULL CONSTRAINT ck_endpoints_codecs CHECK (codecs ~ '^[A-Za-z0-9.@/,_-]{1,200}$'),
    bypass_media        boolean NOT NULL DEFAULT false,
    ignore_early_media  boolean NOT NULL DEFAULT false,
    enabled             boolean NOT NULL DEFAULT true,
    CONSTRAINT ck_endpoints_ip_auth CHECK (auth <> 'ip' OR ip IS NOT NULL),
    CONSTRAINT ck_endpoints_sip_auth CHECK (auth <> 'sip' OR (username IS NOT NULL AND password IS NOT NULL))
);
CREATE INDEX ix_endpoints_customer_id ON billing.endpoints (customer_id);
CREATE INDEX ix_endpoints_ip ON billing.endpoints USING gist (ip inet_ops) WHERE auth = 'ip';

-- Ledger: every change of a balance is one row; customers.balance = sum(amount).
-- Positive amounts credit the customer, negative ones debit.
CREATE TABLE billing.ledger (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_ledger PRIMARY KEY,
    customer_id  bigint NOT NULL CONSTRAINT fk_ledger_customer_id_customers REFERENCES billing.customers (id) ON DELETE RESTRICT,
    kind         text NOT NULL CONSTRAINT ck_ledger_kind CHECK (kind IN ('initial', 'call', 'topup', 'payment', 'credit_note', 'adjustment', 'rerate')),
    amount       billing.money NOT NULL,
    call_uuid    text NULL,
    reference    text NULL,
    note         text NULL,
    created_by   text NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_ledger_customer_id_created_at ON billing.ledger (customer_id, created_at);
CREATE INDEX ix_ledger_call_uuid ON billing.ledger (call_uuid) WHERE call_uuid IS NOT NULL;

CREATE FUNCTION billing_private.tg_ledger__apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE billing.customers SET balance = balance + NEW.amount WHERE id = NEW.customer_id;
    RETURN NULL;
END $$;

CREATE TRIGGER tg_ledger__apply AFTER INSERT ON billing.ledger
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_ledger__apply();

-- History is never edited: corrections are new rows.
CREATE FUNCTION billing_private.tg_ledger__immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: add a correcting entry instead'
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER tg_ledger__immutable BEFORE UPDATE OR DELETE ON billing.ledger
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_ledger__immutable();

-- The balance column may only move through the ledger.
CREATE FUNCTION billing_private.tg_customers__balance_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        RAISE EXCEPTION 'customers.balance changes only through billing.ledger'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tg_customers__balance_guard BEFORE UPDATE OF balance ON billing.customers
    FOR EACH ROW WHEN (OLD.balance IS DISTINCT FROM NEW.balance)
    EXECUTE FUNCTION billing_private.tg_customers__balance_guard();

CREATE FUNCTION billing_private.tg_customers__balance_insert_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance <> 0 THEN
        RAISE EXCEPTION 'a new customer starts at 0; add an initial ledger entry'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tg_customers__balance_insert_guard BEFORE INSERT ON billing.customers
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_customers__balance_insert_guard();

-- Calls in progress: a hold reserves max_duration worth of the sell rate so that
-- concurrent calls never spend the same money twice. Keyed by FreeSWITCH's uuid.
CREATE TABLE billing.call_holds (
    call_uuid     text CONSTRAINT pk_call_holds PRIMARY KEY,
    customer_id   bigint NOT NULL CONSTRAINT fk_call_holds_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    endpoint_id   bigint NOT NULL CONSTRAINT fk_call_holds_endpoint_id_endpoints REFERENCES billing.endpoints (id) ON DELETE CASCADE,
    amount        billing.money NOT NULL CONSTRAINT ck_call_holds_amount CHECK (amount >= 0),
    sell_rate     billing.rate NOT NULL,
    max_duration  integer NULL,
    destination   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX ix_call_holds_customer_id ON billing.call_holds (customer_id);
CREATE INDEX ix_call_holds_endpoint_id ON billing.call_holds (endpoint_id);
CREATE INDEX ix_call_holds_expires_at ON billing.call_holds (expires_at);

-- Raw CDRs exactly as FreeSWITCH's mod_cdr_pg_csv sends them (CONTRACT 2). The
-- billing trigger (sql/procedures) rates each row; the row itself is never dropped.
CREATE TABLE billing.fs_cdr (
    id                       bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_fs_cdr PRIMARY KEY,
    uuid                     text NOT NULL CONSTRAINT uq_fs_cdr_uuid UNIQUE,
    caller_id_number         text NULL,
    destination_number       text NULL,
    start_stamp              timestamptz NULL,
    answer_stamp             timestamptz NULL,
    end_stamp                timestamptz NULL,
    duration                 integer NULL,
    billsec                  integer NULL,
    hangup_cause             text NULL,
    sip_hangup_disposition   text NULL,
    billing_customer_id      bigint NULL,
    billing_endpoint_id      bigint NULL,
    billing_destination      text NULL,
    billing_sell_prefix      text NULL,
    billing_sell_rate        numeric NULL,
    billing_route_seq        integer NULL,
    billing_gateway          text NULL,
    billing_provider_id      bigint NULL,
    billing_cost_rate        numeric NULL,
    -- extras FreeSWITCH can send; all optional
    hangup_cause_q850        integer NULL,
    billmsec                 bigint NULL,
    start_epoch              bigint NULL,
    answer_epoch             bigint NULL,
    end_epoch                bigint NULL,
    network_addr             text NULL,
    sip_user                 text NULL,
    last_bridge_proto_specific_hangup_cause text NULL,
    billing_reject_reason    text NULL,
    -- set by the billing trigger
    status                   text NOT NULL DEFAULT 'new' CONSTRAINT ck_fs_cdr_status CHECK (status IN ('new', 'rated', 'unrated')),
    unrated_reason           text NULL,
    received_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_fs_cdr_unrated ON billing.fs_cdr (received_at) WHERE status = 'unrated';

-- Rated CDRs, partitioned by month of start_stamp. Partitions are created ahead of
-- time by billing_private.ensure_cdr_partitions() (and a default partition catches
-- anything outside them, so an insert never fails for want of a partition).
CREATE TABLE billing.cdr (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    fs_cdr_id        bigint NOT NULL,
    uuid             text NOT NULL,
    customer_id      bigint NULL,
    endpoint_id      bigint NULL,
    provider_id      bigint NULL,
    gateway          text NULL,
    caller_id        text NULL,
    destination      text NULL,
    sell_prefix      text NULL,
    start_stamp      timestamptz NOT NULL,
    answer_stamp     timestamptz NULL,
    end_stamp        timestamptz NULL,
    duration         integer NOT NULL DEFAULT 0,
    billsec          integer NOT NULL DEFAULT 0,
    billed_seconds   integer NOT NULL DEFAULT 0,
    cost_billed_seconds integer NOT NULL DEFAULT 0,
    sell_rate_id     bigint NULL,
    sell_rate        numeric NULL,
    sell_amount      billing.money NOT NULL DEFAULT 0,
    cost_rate_id     bigint NULL,
    cost_rate        numeric NULL,
    cost_amount      billing.money NOT NULL DEFAULT 0,
    margin           billing.money NOT NULL DEFAULT 0,
    hangup_cause     text NULL,
    route_seq        integer NULL,
    status           text NOT NULL DEFAULT 'rated' CONSTRAINT ck_cdr_status CHECK (status IN ('rated', 'unrated')),
    unrated_reason   text NULL,
    rated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_cdr PRIMARY KEY (id, start_stamp)
) PARTITION BY RANGE (start_stamp);
CREATE TABLE billing.cdr_default PARTITION OF billing.cdr DEFAULT;
CREATE INDEX ix_cdr_customer_id_start_stamp ON billing.cdr (customer_id, start_stamp);
CREATE INDEX ix_cdr_start_stamp ON billing.cdr (start_stamp);
CREATE INDEX ix_cdr_provider_id_start_stamp ON billing.cdr (provider_id, start_stamp);
CREATE INDEX ix_cdr_uuid ON billing.cdr (uuid);

CREATE FUNCTION billing_private.ensure_cdr_partitions(p_months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_month   date := date_trunc('month', now())::date - interval '1 month';
    v_created integer := 0;
    v_name    text;
BEGIN
    FOR i IN 0 .. p_months_ahead + 1 LOOP
        v_name := 'cdr_' || to_char(v_month, 'YYYY_MM');
        IF to_regclass('billing.' || v_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE billing.%I PARTITION OF billing.cdr FOR VALUES FROM (%L) TO (%L)',
                v_name, v_month, (v_month + interval '1 month')::date);
            v_created := v_created + 1;
        END IF;
        v_month := (v_month + interval '1 month')::date;
    END LOOP;
    RETURN v_created;
END $$;

SELECT billing_private.ensure_cdr_partitions(3);

-- Portal users: admins, and customer users bound to exactly one customer.
CREATE TABLE billing.users (
    id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_users PRIMARY KEY,
    email          text NOT NULL CONSTRAINT ck_users_email CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND email = lower(email)),
    password_hash  text NOT NULL,
    role           text NOT NULL CONSTRAINT ck_users_role CHECK (role IN ('admin', 'customer')),
    customer_id    bigint NULL CONSTRAINT fk_users_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz NULL,
    CONSTRAINT uq_users_email UNIQUE (email),
    CONSTRAINT ck_users_role_customer CHECK ((role = 'admin') = (customer_id IS NULL))
);

-- Audit log of admin changes.
CREATE TABLE billing.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_audit_log PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ix_audit_log_at ON billing.audit_log (at);
CREATE INDEX ix_audit_log_entity ON billing.audit_log (entity, entity_id);

-- Per-gateway traffic statistics for quality (ACD) and reliability (ASR) routing,
-- kept up to date by CDR billing.
CREATE TABLE billing.gateway_stats (
    gateway_id     bigint CONSTRAINT pk_gateway_stats PRIMARY KEY CONSTRAINT fk_gateway_stats_gateway_id_gateways REFERENCES billing.gateways (id) ON DELETE CASCADE,
    calls          numeric NOT NULL DEFAULT 0,
    answered       numeric NOT NULL DEFAULT 0,
    billsec        numeric NOT NULL DEFAULT 0,
    asr            numeric NULL,
    acd            numeric NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Balance events (low-balance crossings) for the alerting job.
CREATE TABLE billing.balance_events (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_balance_events PRIMARY KEY,
    customer_id  bigint NOT NULL CONSTRAINT fk_balance_events_customer_id_customers REFERENCES billing.customers (id) ON DELETE CASCADE,
    kind         text NOT NULL CONSTRAINT ck_balance_events_kind CHECK (kind IN ('low_balance')),
    balance      billing.money NOT NULL,
    threshold    billing.money NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    notified_at  timestamptz NULL
);
CREATE INDEX ix_balance_events_pending ON billing.balance_events (created_at) WHERE notified_at IS NULL;

-- The least-privilege role FreeSWITCH connects as. Roles are cluster-wide, so create
-- it only when missing (two databases migrating at once may race: ignore the loser).
-- Its grants are (re)applied by sql/procedures/zz_grants.sql after every upgrade.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'billing_freeswitch') THEN
        CREATE ROLE billing_freeswitch LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;
