-- The worker side of lib/offload.lua: reads the statement route.lua left on the call,
-- runs it, and writes the encoded answer back onto the call. Runs in a luarun thread:
-- no session object, only the API (uuid_getvar / uuid_setvar).
local db = require("billing.lib.db")
local offload = require("billing.lib.offload")
local sql = require("billing.lib.sql")
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
    dsn = dsn ~= "" and dsn or nil
    local rows, err = db.select(open_dbh, dsn, query, api)
    local answer = rows and offload.encode_rows(rows) or offload.encode_error(err)
    local result = api:executeString("uuid_setvar " .. uuid .. " " .. offload.ANSWER_VAR .. " " .. answer)
    if type(result) ~= "string" or not result:match("^%+OK") then
        -- The call gave up waiting and is gone: route_call's hold would block its
        -- customer's money until it expires. (A call still hanging up is covered by its
        -- CDR, which releases the hold; one already billed gets no hold: call_ended.)
        log.notice("route query answered after the call ended (%s)", rows and "ok" or tostring(err))
        if rows and rows[1] and rows[1].ok == "t" then
            local released, release_err = db.select(open_dbh, dsn,
                "SELECT billing.release_call(" .. sql.literal(uuid) .. ") AS released", api)
            if not released then
                log.err("could not release the hold of the ended call: %s", tostring(release_err))
            end
        end
        return "late"
    end
    return rows and "answered" or "failed"
end

return M
