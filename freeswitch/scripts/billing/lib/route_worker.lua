-- The worker side of lib/offload.lua: reads the statement route.lua left on the call,
-- runs it, and writes the encoded answer back onto the call. Runs in a luarun thread:
-- no session object, only the API (uuid_getvar / uuid_setvar).
local db = require("billing.lib.db")
local offload = require("billing.lib.offload")
local validate = require("billing.lib.validate")

local M = {}

-- Only call set-up's own statement is run, whoever set the channel variable.
M.STATEMENT_PREFIX = "SELECT r.*, o.* FROM billing.route_call("

function M.run(uuid, api, open_dbh, dsn, log)
    uuid = validate.uuid(uuid)
    if not uuid then
        log.err("route query worker started without a call uuid")
        return "no_uuid"
    end
    local query = api:executeString("uuid_getvar " .. uuid .. " " .. offload.QUERY_VAR)
    if type(query) ~= "string" or query:sub(1, #M.STATEMENT_PREFIX) ~= M.STATEMENT_PREFIX then
        -- The call is gone or gave up waiting before this thread started.
        log.info("route query worker: nothing to ask (%s)", tostring(query))
        return "no_query"
    end
    local rows, err = db.select(open_dbh, dsn ~= "" and dsn or nil, query, api)
    local answer = rows and offload.encode_rows(rows) or offload.encode_error(err)
    local result = api:executeString("uuid_setvar " .. uuid .. " " .. offload.ANSWER_VAR .. " " .. answer)
    if type(result) ~= "string" or not result:match("^%+OK") then
        log.notice("route query answered after the call ended (%s)", rows and "ok" or tostring(err))
        return "late"
    end
    return rows and "answered" or "failed"
end

return M
