-- Settings of route.lua, with the defaults below. An operator overrides them with
-- global variables in billing_vars.xml (no Lua edited on a switch), e.g.
--   freeswitch/configure --conf /etc/freeswitch billing_sip_code_too_many_calls=503
local M = {}

M.REASONS = {
    "invalid_number", "unknown_source", "account_disabled", "unknown_destination",
    "destination_not_allowed", "no_rate", "too_many_calls", "spend_limit",
    "insufficient_funds", "negative_margin", "no_route",
}

-- SIP final response per reject reason: what the customer's PBX sees. Chosen so a PBX
-- can tell "pay us" (402), "not allowed" (403), "no such number" (404/484) and
-- "try later / elsewhere" (486/503) apart.
M.DEFAULT_SIP_CODES = {
    invalid_number = 484,
    unknown_source = 403,
    account_disabled = 403,
    unknown_destination = 404,
    destination_not_allowed = 403,
    no_rate = 404,
    too_many_calls = 486,
    spend_limit = 403,
    insufficient_funds = 402,
    negative_margin = 503,
    no_route = 503,
}

-- Causes that come from the called party: trying another carrier would ring the same
-- callee again (or reach them after they refused), so the call ends with that cause.
M.DEFAULT_CALLEE_CAUSES = {
    "USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "CALL_REJECTED", "ORIGINATOR_CANCEL",
    "NUMBER_CHANGED", "INVALID_NUMBER_FORMAT", "SUBSCRIBER_ABSENT", "USER_NOT_REGISTERED",
}

M.DEFAULT_ROUTE_TIMEOUT_MS = 2000

local function split_words(text)
    local out = {}
    for word in tostring(text):gmatch("[A-Z_]+") do
        out[#out + 1] = word
    end
    return out
end

-- get_global: a function name -> string or nil (freeswitch.getGlobalVariable).
function M.load(get_global)
    local function global(name)
        local value = get_global and get_global(name)
        if value == nil or value == "" then
            return nil
        end
        return value
    end

    local cfg = {
        dsn = global("billing_dsn"),
        limit_realm = global("billing_limit_realm") or "billing_gateways",
        bridge_timeout = tonumber(global("billing_bridge_timeout") or ""),
        -- longest wait for the database's answer during set-up (lib/offload.lua)
        route_timeout_ms = tonumber(global("billing_route_timeout_ms") or "") or M.DEFAULT_ROUTE_TIMEOUT_MS,
        hangup_after_bridge = global("billing_hangup_after_bridge") ~= "false",
        gateway_domain = global("billing_gateway_domain") or "billing.gateways",
        -- percent of each gateway's max_channels this switch may use: the limit hash
        -- counts one switch's calls, so N switches share a carrier's channels by each
        -- taking 100/N (docs/scaling-switches.md)
        gateway_limit_share = tonumber(global("billing_gateway_limit_share") or "") or 100,
        prompts = {},
        sip_codes = {},
        callee_causes = {},
    }
    if not cfg.limit_realm:match("^[A-Za-z0-9_.%-]+$") then
        cfg.limit_realm = "billing_gateways"
    end
    if cfg.route_timeout_ms < 100 or cfg.route_timeout_ms > 60000 then
        cfg.route_timeout_ms = M.DEFAULT_ROUTE_TIMEOUT_MS
    end
    if cfg.gateway_limit_share < 1 or cfg.gateway_limit_share > 100
            or cfg.gateway_limit_share ~= math.floor(cfg.gateway_limit_share) then
        cfg.gateway_limit_share = 100
    end
    if cfg.bridge_timeout and cfg.bridge_timeout <= 0 then
        cfg.bridge_timeout = nil
    end
    for _, reason in ipairs(M.REASONS) do
        cfg.prompts[reason] = global("billing_prompt_" .. reason)
        local code = tonumber(global("billing_sip_code_" .. reason) or "")
        if code and code >= 400 and code <= 699 then
            cfg.sip_codes[reason] = math.floor(code)
        else
            cfg.sip_codes[reason] = M.DEFAULT_SIP_CODES[reason]
        end
    end
    local causes = global("billing_callee_causes")
    for _, cause in ipairs(causes and split_words(causes) or M.DEFAULT_CALLEE_CAUSES) do
        cfg.callee_causes[cause] = true
    end
    return cfg
end

return M
