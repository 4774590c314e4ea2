-- Shape checks for everything route.lua reads from the channel before it goes
-- anywhere near SQL. Pure functions: value in, normalised value (or nil) out.
local M = {}

-- Destination as dialed: optional leading '+', then 1 to 20 digits (CONTRACT 1).
function M.destination(value)
    if type(value) ~= "string" then
        return nil
    end
    local digits = value:match("^%+?([0-9]+)$")
    if not digits or #digits > 20 then
        return nil
    end
    return value
end

local function ipv4(value)
    local a, b, c, d = value:match("^([0-9]+)%.([0-9]+)%.([0-9]+)%.([0-9]+)$")
    if not a then
        return nil
    end
    for _, octet in ipairs({ a, b, c, d }) do
        if #octet > 3 or tonumber(octet) > 255 then
            return nil
        end
    end
    return value
end

local function ipv6(value)
    local body = value:match("^%[(.*)%]$") or value
    if #body < 2 or #body > 45 or not body:find(":", 1, true) then
        return nil
    end
    if not body:match("^[0-9A-Fa-f:.]+$") then
        return nil
    end
    local _, double = body:gsub("::", "")
    if double > 1 or body:find(":::", 1, true) then
        return nil
    end
    -- An embedded IPv4 tail (::ffff:192.0.2.1) must itself be valid; it takes the
    -- room of two groups.
    local tail = body:match(":([0-9.]+)$")
    local has_ipv4 = tail ~= nil and tail:find(".", 1, true) ~= nil
    if has_ipv4 and not ipv4(tail) then
        return nil
    end
    local groups = 0
    for group in body:gmatch("[^:]+") do
        if not group:find(".", 1, true) and #group > 4 then
            return nil
        end
        groups = groups + 1
    end
    local full = has_ipv4 and 7 or 8
    if groups > full or (double == 0 and groups < full) then
        return nil
    end
    return body
end

-- Source address: IPv4 or IPv6 text (brackets stripped), else nil (passed as NULL).
-- An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) becomes the
-- IPv4 address, so it matches the endpoints' IPv4 networks.
function M.ip(value)
    if type(value) ~= "string" or value == "" then
        return nil
    end
    local v6 = ipv6(value)
    local mapped = v6 and v6:match("^::[fF][fF][fF][fF]:([0-9.]+)$")
    if mapped then
        return ipv4(mapped)
    end
    return ipv4(value) or v6
end

-- Caller id as received: printable ASCII without backslash, at most 64 characters.
-- Anything else is informational text we do not need: nil (sent as NULL).
function M.caller_id(value)
    if type(value) ~= "string" or value == "" or #value > 64 then
        return nil
    end
    if not value:match("^[ -~]+$") or value:find("\\", 1, true) then
        return nil
    end
    return value
end

-- SIP user names as the database allows them (ck_endpoints_username).
function M.sip_user(value)
    if type(value) ~= "string" then
        return nil
    end
    if #value < 1 or #value > 64 or not value:match("^[A-Za-z0-9_.+%-]+$") then
        return nil
    end
    return value
end

-- FreeSWITCH channel uuid (any token of letters, digits and dashes).
function M.uuid(value)
    if type(value) ~= "string" or #value < 1 or #value > 64 or not value:match("^[A-Za-z0-9%-]+$") then
        return nil
    end
    return value
end

-- A bridge target must be one token: limit_execute splits its arguments on spaces.
function M.dial_string(value)
    if type(value) ~= "string" or value == "" or #value > 1024 then
        return nil
    end
    if not value:match("^[!-~]+$") then
        return nil
    end
    return value
end

-- Names as the database allows them for gateways, providers, contexts (and so sofia
-- profiles and limit ids): letters, digits, "_", ".", "-", at most 64.
function M.name(value)
    if type(value) ~= "string" or #value > 64 or not value:match("^[A-Za-z0-9_.%-]+$") then
        return nil
    end
    return value
end

M.gateway = M.name

-- SIP domains / realms (ck_settings_sip_domain).
function M.domain(value)
    if type(value) ~= "string" or #value > 253 or not value:match("^[A-Za-z0-9.%-]+$") then
        return nil
    end
    return value
end

return M
