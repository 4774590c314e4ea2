-- Call set-up: who is calling, may they, and through which carriers (DESIGN.md,
-- "Data flow of one call"). Everything FreeSWITCH-specific is passed in (session,
-- a function asking the database, the config, a logger), so tests drive this module
-- through an emulator and FreeSWITCH drives it through route.lua.
--
-- FreeSWITCH behaviour this relies on (src/switch_ivr_originate.c, mod_dptools.c,
-- switch_channel.c, mod_sofia.c of 1.10.12, checked in the real switch by
-- tests/switch/):
--   * after an answered bridge the A-leg's originate_disposition is "SUCCESS" (1.10.12
--     sets "call accepted" and then overwrites it with the cause name of SUCCESS), and the
--     A-leg itself is answered; after a failed one it is the cause name;
--   * continue_on_fail=true keeps the A-leg up after a failed bridge so we decide;
--   * limit_execute runs nothing (and sets nothing) when the gateway is at its limit;
--   * hangup(cause) needs a cause name FreeSWITCH knows (switch_channel.c CAUSE_CHART):
--     any other name becomes NORMAL_CLEARING, which refuses an INVITE with 480;
--   * on hangup of an unanswered inbound call, mod_sofia answers the INVITE with the
--     SIP code found in last_bridge_proto_specific_hangup_cause ("sip:402"), else with
--     the code mapped from the hangup cause, plus every sip_rh_* variable as a header.
local reauth = require("billing.lib.reauth")
local sql = require("billing.lib.sql")
local validate = require("billing.lib.validate")

local M = {}

-- The variables describing the route being tried (CONTRACT 2): set before each
-- attempt, so for an answered call they describe the route that answered.
M.ROUTE_VARS = {
    billing_route_seq = "route_seq",
    billing_gateway = "gateway",
    billing_provider_id = "provider_id",
    billing_cost_rate = "cost_rate",
}

-- Set once per routed call (CONTRACT 2).
M.CALL_VARS = {
    billing_customer_id = "customer_id",
    billing_endpoint_id = "endpoint_id",
    billing_destination = "destination",
    billing_sell_prefix = "sell_prefix",
    billing_sell_rate = "sell_rate",
    billing_max_duration = "max_duration",
    billing_granted_seconds = "granted_seconds",
}

-- Outcome variables of a bridge attempt, cleared before each attempt so a skipped
-- attempt (gateway at its channel limit) is not mistaken for the previous one.
local OUTCOME_VARS = {
    "originate_disposition", "originate_failed_cause", "DIALSTATUS",
    "last_bridge_hangup_cause", "last_bridge_proto_specific_hangup_cause",
}

-- Cause names FreeSWITCH 1.10.12 knows (switch_channel.c CAUSE_CHART); hangup() with
-- any other name ends the call as NORMAL_CLEARING.
M.CAUSES = {}
for name in ([[UNALLOCATED_NUMBER NO_ROUTE_TRANSIT_NET NO_ROUTE_DESTINATION CHANNEL_UNACCEPTABLE
    CALL_AWARDED_DELIVERED NORMAL_CLEARING USER_BUSY NO_USER_RESPONSE NO_ANSWER SUBSCRIBER_ABSENT
    CALL_REJECTED NUMBER_CHANGED REDIRECTION_TO_NEW_DESTINATION EXCHANGE_ROUTING_ERROR
    DESTINATION_OUT_OF_ORDER INVALID_NUMBER_FORMAT FACILITY_REJECTED RESPONSE_TO_STATUS_ENQUIRY
    NORMAL_UNSPECIFIED NORMAL_CIRCUIT_CONGESTION NETWORK_OUT_OF_ORDER NORMAL_TEMPORARY_FAILURE
    SWITCH_CONGESTION ACCESS_INFO_DISCARDED REQUESTED_CHAN_UNAVAIL PRE_EMPTED FACILITY_NOT_SUBSCRIBED
    OUTGOING_CALL_BARRED INCOMING_CALL_BARRED BEARERCAPABILITY_NOTAUTH BEARERCAPABILITY_NOTAVAIL
    SERVICE_UNAVAILABLE BEARERCAPABILITY_NOTIMPL CHAN_NOT_IMPLEMENTED FACILITY_NOT_IMPLEMENTED
    SERVICE_NOT_IMPLEMENTED INVALID_CALL_REFERENCE INCOMPATIBLE_DESTINATION INVALID_MSG_UNSPECIFIED
    MANDATORY_IE_MISSING MESSAGE_TYPE_NONEXIST WRONG_MESSAGE IE_NONEXIST INVALID_IE_CONTENTS
    WRONG_CALL_STATE RECOVERY_ON_TIMER_EXPIRE MANDATORY_IE_LENGTH_ERROR PROTOCOL_ERROR INTERWORKING
    ORIGINATOR_CANCEL CRASH SYSTEM_SHUTDOWN LOSE_RACE MANAGER_REQUEST BLIND_TRANSFER
    ATTENDED_TRANSFER ALLOTTED_TIMEOUT USER_CHALLENGE MEDIA_TIMEOUT PICKED_OFF USER_NOT_REGISTERED
    PROGRESS_TIMEOUT INVALID_GATEWAY GATEWAY_DOWN INVALID_URL INVALID_PROFILE NO_PICKUP
    SRTP_READ_ERROR BOWOUT BUSY_EVERYWHERE DECLINE DOES_NOT_EXIST_ANYWHERE NOT_ACCEPTABLE UNWANTED
    NO_IDENTITY BAD_IDENTITY_INFO UNSUPPORTED_CERTIFICATE INVALID_IDENTITY]]):gmatch("[A-Z_]+") do
    M.CAUSES[name] = true
end

local function is_true(value)
    return value == "t" or value == "true" or value == "1"
end

local function present(value)
    if value == nil or value == "" then
        return nil
    end
    return value
end

-- The channel's view of the call. A SIP user counts only once sofia authenticated it.
function M.read_call(session)
    local authorized = session:getVariable("sip_authorized") == "true"
    return {
        uuid = session:getVariable("uuid"),
        destination = session:getVariable("destination_number"),
        caller_id = session:getVariable("caller_id_number"),
        network_addr = session:getVariable("network_addr"),
        sip_user = authorized and present(session:getVariable("sip_auth_username")) or nil,
    }
end

-- The one query of call set-up: route_call's rows plus each row's media options and
-- gateway channel limit, in one round trip. Returns the SQL text, or nil and which
-- input was refused ("destination", "uuid", "sip_user").
function M.build_query(call)
    if not validate.destination(call.destination) then
        return nil, "destination"
    end
    local uuid = validate.uuid(call.uuid)
    if not uuid then
        return nil, "uuid"
    end
    local q_sip_user = "NULL::text"
    if call.sip_user ~= nil then
        -- Not pattern-checked: an odd name simply matches no endpoint in the database;
        -- the quoting helper still refuses anything that could break the literal.
        local quoted = sql.literal(call.sip_user, 128)
        if not quoted then
            return nil, "sip_user"
        end
        q_sip_user = quoted .. "::text"
    end
    local q_uuid = sql.literal(uuid)
    local q_ip = sql.literal_or_null(validate.ip(call.network_addr), "inet")
    local q_caller = sql.literal_or_null(validate.caller_id(call.caller_id), "text")
    local q_dest = sql.literal(call.destination)
    return string.format(
        "SELECT r.*, o.* FROM billing.route_call(%s::text, %s, %s, %s, %s::text) AS r"
            .. " LEFT JOIN LATERAL billing.route_options(r.endpoint_id, r.gateway) AS o ON true"
            .. " ORDER BY r.route_seq",
        q_uuid, q_ip, q_sip_user, q_caller, q_dest)
end

-- route_call's rows in failover order, or nil and an error text.
function M.order_rows(rows)
    if #rows == 0 then
        return nil, "billing.route_call returned no row"
    end
    table.sort(rows, function(a, b)
        return (tonumber(a.route_seq) or 0) < (tonumber(b.route_seq) or 0)
    end)
    return rows
end

M.FAIL_CLOSED_CAUSE = "NORMAL_TEMPORARY_FAILURE"     -- SIP 503
M.FAIL_CLOSED_RETRY_AFTER = "10"

-- Ends the call because billing cannot decide: never let it through unbilled.
function M.fail_closed(session, log, why)
    log.err("FAIL CLOSED, hanging up with %s: %s", M.FAIL_CLOSED_CAUSE, why)
    session:setVariable("billing_reject_reason", "billing_unavailable")
    session:setVariable("sip_rh_Retry-After", M.FAIL_CLOSED_RETRY_AFTER)
    session:hangup(M.FAIL_CLOSED_CAUSE)
    return "fail_closed"
end

-- Refuses the call: reason for the CDR, optional prompt, SIP code, cause.
function M.reject(session, cfg, log, reason, cause, row)
    if not M.CAUSES[cause] then
        cause = "CALL_REJECTED"
    end
    session:setVariable("billing_reject_reason", reason)
    if row then
        for var, column in pairs(M.CALL_VARS) do
            if present(row[column]) then
                session:setVariable(var, row[column])
            end
        end
    end
    local prompt = cfg.prompts[reason]
    if prompt and session:ready() then
        -- Early media only: the call is never answered, so it is never billed.
        session:execute("pre_answer", "")
        session:execute("playback", prompt)
    end
    local code = cfg.sip_codes[reason]
    if code then
        session:setVariable("last_bridge_proto_specific_hangup_cause", "sip:" .. code)
    end
    log.notice("call refused: %s (cause %s, SIP %s)", tostring(reason), cause, tostring(code or "default"))
    session:hangup(cause)
    return "rejected"
end

local function bool_var(a, b)
    return (is_true(a) or is_true(b)) and "true" or "false"
end

-- One bridge through one route. Returns "answered", "caller_gone" or "failed", cause.
function M.attempt(session, cfg, log, row)
    for var, column in pairs(M.ROUTE_VARS) do
        session:setVariable(var, present(row[column]))
    end
    local seq = tostring(row.route_seq)
    local dial = validate.dial_string(row.dial_string)
    if not dial then
        log.err("route %s: unusable dial string %q, skipped", seq, tostring(row.dial_string))
        return "failed", "INVALID_GATEWAY"
    end
    session:setVariable("bypass_media", bool_var(row.opt_endpoint_bypass_media, row.opt_gateway_bypass_media))
    session:setVariable("ignore_early_media",
        bool_var(row.opt_endpoint_ignore_early_media, row.opt_gateway_ignore_early_media))
    for _, var in ipairs(OUTCOME_VARS) do
        session:setVariable(var, nil)
    end

    local gateway = validate.gateway(row.gateway)
    local max_channels = tonumber(row.opt_gateway_max_channels)
    if max_channels and cfg.gateway_limit_share < 100 then
        -- this switch's share, rounded down: the switches together never exceed the limit
        max_channels = math.floor(max_channels * cfg.gateway_limit_share / 100)
        if max_channels < 1 then
            log.warning("route %s: gateway %s has no channel on this switch (%d%% of %s)", seq, tostring(gateway),
                cfg.gateway_limit_share, tostring(row.opt_gateway_max_channels))
            return "failed", "NORMAL_CIRCUIT_CONGESTION"
        end
    end
    -- Carrier legs do not count against sessions-per-second / max-sessions: those
    -- limits are the switch's admission of customers' calls (switch.conf.xml).
    local target = "{no_throttle_limits=true}" .. dial
    if gateway and max_channels then
        log.info("route %s: %s under limit %d", seq, dial, max_channels)
        session:execute("limit_execute", string.format("hash %s %s %d bridge %s",
            cfg.limit_realm, gateway, max_channels, target))
    else
        log.info("route %s: %s", seq, dial)
        session:execute("bridge", target)
    end

    local disposition = session:getVariable("originate_disposition")
    if disposition == "SUCCESS" or disposition == "call accepted" or session:answered() then
        return "answered"
    end
    if not session:ready() then
        return "caller_gone", disposition
    end
    if disposition == nil then
        log.warning("route %s: gateway %s is at its limit of %s channels", seq, tostring(gateway),
            tostring(max_channels))
        return "failed", "NORMAL_CIRCUIT_CONGESTION"
    end
    local cause = session:getVariable("originate_failed_cause") or disposition
    if not M.CAUSES[cause] then
        cause = session:getVariable("last_bridge_hangup_cause")
        if not M.CAUSES[cause] then
            cause = "NORMAL_TEMPORARY_FAILURE"
        end
    end
    return "failed", cause
end

-- Sets the call's variables and tries the routes in order.
function M.route(session, cfg, log, rows)
    local first = rows[1]
    for var, column in pairs(M.CALL_VARS) do
        session:setVariable(var, present(first[column]))
    end
    local codecs = present(first.opt_endpoint_codecs)
    if codecs then
        session:setVariable("absolute_codec_string", codecs)
    end
    -- The call is cut when its grant of credit runs out, counted from the answer; when
    -- the funds allow more than the grant, the switch asks for more before (lib/reauth.lua).
    local max_duration = tonumber(first.max_duration)
    local granted = tonumber(first.granted_seconds) or max_duration
    if granted then
        session:setVariable("execute_on_answer",
            string.format("sched_hangup +%d ALLOTTED_TIMEOUT", math.floor(granted)))
        if max_duration and granted < max_duration then
            reauth.arm(session, session:getVariable("uuid"), math.floor(granted),
                math.floor(tonumber(first.opt_reauth_margin) or 10))
        end
    end
    session:setVariable("hangup_after_bridge", cfg.hangup_after_bridge and "true" or "false")
    session:setVariable("continue_on_fail", "true")
    -- Each route rings at most the database's ring timeout: the set-up time the call's
    -- hold is made to outlive (route_call's expiry); billing_bridge_timeout may shorten it.
    local ring = tonumber(first.opt_ring_timeout)
    if cfg.bridge_timeout and (not ring or cfg.bridge_timeout < ring) then
        ring = cfg.bridge_timeout
    end
    if ring then
        session:setVariable("call_timeout", tostring(math.floor(ring)))
    end

    local last_cause
    for _, row in ipairs(rows) do
        if not session:ready() then
            return "caller_gone"
        end
        local outcome, cause = M.attempt(session, cfg, log, row)
        if outcome == "answered" then
            log.info("route %s answered", tostring(row.route_seq))
            if session:ready() then
                -- hangup_after_bridge off: the carrier ended the call, so does the caller's
                -- leg (no other route may be tried for an answered call).
                session:hangup(present(session:getVariable("last_bridge_hangup_cause")) or "NORMAL_CLEARING")
            end
            return "answered"
        end
        if outcome == "caller_gone" then
            log.info("caller hung up during route %s (%s)", tostring(row.route_seq), tostring(cause))
            return "caller_gone"
        end
        last_cause = cause
        if cfg.callee_causes[cause] then
            log.info("route %s: %s comes from the callee, no failover", tostring(row.route_seq), cause)
            session:hangup(cause)
            return "callee_cause"
        end
        log.notice("route %s failed with %s", tostring(row.route_seq), cause)
    end
    log.notice("all %d routes failed, last cause %s", #rows, tostring(last_cause))
    session:hangup(last_cause or "NO_ROUTE_DESTINATION")
    return "all_failed"
end

-- The whole call set-up. ask(query) returns route_call's rows, or nil, an error text
-- and "timeout" / "gone" / "error" (lib/offload.lua).
function M.run(session, ask, cfg, log)
    if not session:ready() then
        log.info("caller already gone, nothing to route")
        return "caller_gone"
    end
    local call = M.read_call(session)
    if not validate.destination(call.destination) then
        return M.reject(session, cfg, log, "invalid_number", "INVALID_NUMBER_FORMAT")
    end
    local query, refused = M.build_query(call)
    if not query then
        if refused == "sip_user" then
            return M.reject(session, cfg, log, "unknown_source", "CALL_REJECTED")
        end
        return M.fail_closed(session, log, "unusable channel variable: " .. tostring(refused))
    end
    if not cfg.dsn then
        return M.fail_closed(session, log, "global variable billing_dsn is not set (billing_vars.xml)")
    end
    local answer, err, kind = ask(query)
    if kind == "gone" then
        log.info("caller hung up during set-up")
        return "caller_gone"
    end
    local rows
    if answer then
        rows, err = M.order_rows(answer)
    end
    if not rows then
        return M.fail_closed(session, log, "billing.route_call failed: " .. tostring(err)
            .. " (check billing_dsn, mod_pgsql, PostgreSQL)")
    end
    local first = rows[1]
    if not is_true(first.ok) then
        return M.reject(session, cfg, log, present(first.reason) or "unknown", first.hangup_cause, first)
    end
    return M.route(session, cfg, log, rows)
end

return M
