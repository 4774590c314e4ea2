-- Answers FreeSWITCH's XML lookups from the database (lua.conf.xml bindings
-- "directory,configuration"):
--
--   directory, action=sip_auth, user, domain   -> the SIP user's a1-hash, context and
--       variables (billing.directory_user): digest authentication of `auth: sip`
--       endpoints.
--   directory, purpose=gateways, domain <billing_gateway_domain> (default
--       "billing.gateways"), profile P        -> the gateways of enabled providers
--       (billing.sofia_gateways). The carriers profile lists that domain with
--       parse="true", so sofia loads these gateways when the profile starts and on
--       every `sofia profile carriers rescan`, while the profile's own settings stay
--       in the static sip_profiles/carriers.xml. (Answering sofia.conf itself would
--       have to repeat every profile setting: on a rescan mod_sofia resets the
--       profile's ACLs and RTP addresses before re-reading <settings>.)
--   configuration, acl.conf                    -> the list "billing_customers" of
--       IP-authenticated endpoints' networks (billing.acl_networks), read at startup
--       and on `reloadacl`.
--
-- Anything else, a database that cannot be reached, or input that fails validation
-- gets the "not found" document, so FreeSWITCH falls back to its static XML (for
-- authentication that means the user is unknown: fail closed).
local db = require("billing.lib.db")
local sql = require("billing.lib.sql")
local validate = require("billing.lib.validate")
local xml = require("billing.lib.xml")

local M = {}

M.NOT_FOUND = table.concat({
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    '<document type="freeswitch/xml">',
    '  <section name="result">',
    '    <result status="not found"/>',
    "  </section>",
    "</document>",
}, "\n")

M.ACL_LIST = "billing_customers"

local function header(params, name)
    if params == nil then
        return nil
    end
    local value = params:getHeader(name)
    if value == nil or value == "" then
        return nil
    end
    return value
end

function M.directory_user(host, user, domain)
    local log = host.log
    local q_user = sql.literal(user)
    local q_domain = sql.literal(domain)
    local rows, err = db.select(host.open_dbh, host.cfg.dsn, string.format(
        "SELECT * FROM billing.directory_user(%s, %s)", q_user, q_domain), host.api)
    if not rows then
        log.err("directory lookup of %s@%s failed: %s", user, domain, tostring(err))
        return M.NOT_FOUND
    end
    local row = rows[1]
    if not row then
        log.info("directory: no enabled SIP endpoint %s@%s", user, domain)
        return M.NOT_FOUND
    end
    local variables = {
        xml.variable("user_context", row.context),
        xml.variable("billing_endpoint_id", row.endpoint_id),
        xml.variable("billing_customer_id", row.customer_id),
        xml.variable("billing_endpoint_name", row.endpoint_name),
        xml.variable("billing_auth", "sip"),
    }
    if row.codecs ~= "" then
        variables[#variables + 1] = xml.variable("absolute_codec_string", row.codecs)
    end
    local body = table.concat({
        string.format('    <domain name="%s">', xml.escape(domain)),
        "      <users>",
        string.format('        <user id="%s">', xml.escape(user)),
        "          <params>",
        "            " .. xml.param("a1-hash", row.a1_hash),
        "          </params>",
        "          <variables>",
        "            " .. table.concat(variables, "\n            "),
        "          </variables>",
        "        </user>",
        "      </users>",
        "    </domain>",
    }, "\n")
    return xml.document("directory", body)
end

-- IPv6 literals go in brackets wherever sofia builds a SIP URI from them.
local function uri_host(host)
    if host:find(":", 1, true) and not host:find("[", 1, true) then
        return "[" .. host .. "]"
    end
    return host
end

local function proxy_address(row)
    local address = uri_host(row.host) .. ":" .. row.port
    if row.transport ~= "" and row.transport ~= "udp" then
        address = address .. ";transport=" .. row.transport
    end
    return address
end

function M.gateways(host, domain, profile)
    local log = host.log
    local rows, err = db.select(host.open_dbh, host.cfg.dsn, string.format(
        "SELECT * FROM billing.sofia_gateways(%s)", sql.literal(profile)), host.api)
    if not rows then
        log.err("gateway list for profile %s failed: %s", profile, tostring(err))
        return M.NOT_FOUND
    end
    local lines = {
        string.format('    <domain name="%s">', xml.escape(domain)),
        string.format('      <user id="%s">', xml.escape(profile)),
        "        <gateways>",
    }
    for _, row in ipairs(rows) do
        if validate.name(row.gateway) then
            local register = row.register == "t" and "true" or "false"
            lines[#lines + 1] = string.format('          <gateway name="%s">', xml.escape(row.gateway))
            lines[#lines + 1] = "            " .. xml.param("proxy", proxy_address(row))
            lines[#lines + 1] = "            " .. xml.param("realm", uri_host(row.host))
            lines[#lines + 1] = "            " .. xml.param("register", register)
            lines[#lines + 1] = "            " .. xml.param("register-transport", row.transport ~= "" and row.transport or "udp")
            lines[#lines + 1] = "            " .. xml.param("caller-id-in-from", "true")
            if row.username ~= "" then
                lines[#lines + 1] = "            " .. xml.param("username", row.username)
            end
            if row.password ~= "" then
                lines[#lines + 1] = "            " .. xml.param("password", row.password)
            end
            lines[#lines + 1] = "            <variables>"
            lines[#lines + 1] = "              " .. xml.variable("billing_provider_id", row.provider_id, "outbound")
            if row.codecs ~= "" then
                lines[#lines + 1] = "              " .. xml.variable("absolute_codec_string", row.codecs, "outbound")
            end
            lines[#lines + 1] = "            </variables>"
            lines[#lines + 1] = "          </gateway>"
        else
            log.warning("gateway name %q skipped: not a valid sofia gateway name", tostring(row.gateway))
        end
    end
    lines[#lines + 1] = "        </gateways>"
    lines[#lines + 1] = "      </user>"
    lines[#lines + 1] = "    </domain>"
    log.info("%d gateways for profile %s", #rows, profile)
    return xml.document("directory", table.concat(lines, "\n"))
end

function M.acl(host)
    local log = host.log
    local rows, err = db.select(host.open_dbh, host.cfg.dsn, string.format(
        "SELECT * FROM billing.acl_networks(%s)", sql.literal(M.ACL_LIST)), host.api)
    if not rows then
        log.err("ACL list failed, static acl.conf stays in charge: %s", tostring(err))
        return M.NOT_FOUND
    end
    local lines = {
        '    <configuration name="acl.conf" description="Network Lists (billing)">',
        "      <network-lists>",
        string.format('        <list name="%s" default="deny">', M.ACL_LIST),
    }
    for _, row in ipairs(rows) do
        lines[#lines + 1] = "          " .. xml.empty_tag("node", { { "type", "allow" }, { "cidr", row.cidr } })
    end
    lines[#lines + 1] = "        </list>"
    lines[#lines + 1] = "      </network-lists>"
    lines[#lines + 1] = "    </configuration>"
    return xml.document("configuration", table.concat(lines, "\n"))
end

-- request: XML_REQUEST; params: the request's event (may be nil); host: { open_dbh,
-- cfg, log, api } (api: freeswitch.API(), used to drop stale database handles).
function M.handle(request, params, host)
    local cfg = host.cfg
    if type(request) ~= "table" then
        return M.NOT_FOUND
    end
    local section = request.section
    if section == "directory" then
        if header(params, "purpose") == "gateways" then
            local domain = request.key_value or header(params, "domain")
            local profile = validate.name(header(params, "profile"))
            if domain == cfg.gateway_domain and profile then
                return M.gateways(host, domain, profile)
            end
            return M.NOT_FOUND
        end
        if header(params, "action") == "sip_auth" then
            local user = validate.sip_user(header(params, "user"))
            local domain = validate.domain(header(params, "domain"))
            if user and domain then
                return M.directory_user(host, user, domain)
            end
            host.log.info("directory: refused malformed user/domain")
        end
        return M.NOT_FOUND
    end
    if section == "configuration" and request.key_value == "acl.conf" then
        return M.acl(host)
    end
    return M.NOT_FOUND
end

return M
