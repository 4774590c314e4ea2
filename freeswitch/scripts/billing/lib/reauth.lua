-- Credit in quotas on the switch (CONTRACT 1b of DESIGN.md).
--
-- route.lua (router.route) arms a call whose grant is shorter than the call may last:
--   execute_on_answer = sched_hangup +<granted> ALLOTTED_TIMEOUT   the cut, from the answer
--   api_on_answer     = sched_api +<granted - margin> billing-reauth-<uuid>
--                       luarun billing/reauth.lua <uuid> ${strepoch()} <margin>
--   api_hangup_hook   = sched_del billing-reauth-<uuid>            nothing left behind
-- ${strepoch()} is expanded when api_on_answer runs: the answer's epoch second (the
-- channel's answer_epoch variable only exists once the call has ended).
-- Then this module, in its luarun thread, asks billing.reauthorize_call. Granted: the
-- pending hang-up (scheduler group <uuid>, which sched_hangup uses) is replaced by one
-- at answer + the new total, and unless the grant is final the next re-authorization is
-- scheduled `margin` seconds before it. Refused or unreachable: nothing changes and the
-- call ends with its current grant, never later.
-- FreeSWITCH facts (switch_scheduler.c, mod_commands.c of 1.10.12): the scheduler works
-- in whole seconds of the clock; "sched_hangup <epoch> <uuid> <cause>" schedules in
-- group <uuid>, "sched_del <group>" removes a group's tasks, "sched_api <epoch> <group>
-- <command>" runs an API command then.
local db = require("billing.lib.db")
local sql = require("billing.lib.sql")
local validate = require("billing.lib.validate")

local M = {}

M.GRANTED_VAR = "billing_granted_seconds"
M.SCRIPT = "billing/reauth.lua"

function M.group(uuid)
    return "billing-reauth-" .. uuid
end

-- The channel variables route.lua sets for a call that will need more credit.
function M.arm(session, uuid, granted, margin)
    session:setVariable(M.GRANTED_VAR, tostring(granted))
    session:setVariable("api_on_answer", string.format("sched_api +%d %s luarun %s %s ${strepoch()} %d",
        math.max(granted - margin, 1), M.group(uuid), M.SCRIPT, uuid, margin))
    session:setVariable("api_hangup_hook", "sched_del " .. M.group(uuid))
end

local function whole(text)
    return tonumber(type(text) == "string" and text:match("^%d+$") or nil)
end

local function ok_reply(text)
    return type(text) == "string" and text:match("^%+OK") ~= nil
end

-- args: the luarun arguments, uuid, answer epoch, margin. Returns what happened:
-- "extended", "final", "refused", "unreachable", "gone", "bad_arguments".
function M.run(args, api, open_dbh, dsn, log)
    local uuid = validate.uuid(args[1])
    local answered_at, margin = whole(args[2]), whole(args[3])
    if not uuid or not answered_at or answered_at <= 0 or not margin then
        log.err("re-authorization started with unusable arguments")
        return "bad_arguments"
    end
    local exists = api:executeString("uuid_exists " .. uuid)
    if type(exists) ~= "string" or not exists:match("^true") then
        log.info("re-authorization: the call is gone")
        return "gone"
    end
    local now = math.floor((tonumber(api:getTime()) or 0) / 1000)
    local query = string.format("SELECT * FROM billing.reauthorize_call(%s, %d)", sql.literal(uuid),
        math.max(now - answered_at, 0))
    local rows, err = db.select(open_dbh, dsn ~= "" and dsn or nil, query, api)
    if not rows or not rows[1] then
        log.err("re-authorization unreachable, the call ends with its grant: %s", tostring(err))
        return "unreachable"
    end
    local row = rows[1]
    local granted = tonumber(row.granted_seconds)
    if row.ok ~= "t" or not granted then
        log.notice("no more credit (%s): the call ends with its grant of %s s", tostring(row.reason),
            tostring(row.granted_seconds))
        return "refused"
    end
    local ends_at = answered_at + granted
    api:executeString("sched_del " .. uuid)
    if not ok_reply(api:executeString(string.format("sched_hangup %d %s ALLOTTED_TIMEOUT", ends_at, uuid))) then
        log.info("re-authorization: the call ended meanwhile")
        return "gone"
    end
    api:executeString(string.format("uuid_setvar %s %s %d", uuid, M.GRANTED_VAR, granted))
    if row.final == "t" then
        log.info("credit granted up to %d s, the last grant", granted)
        return "final"
    end
    api:executeString(string.format("sched_api %d %s luarun %s %s %d %d", math.max(ends_at - margin, now + 1),
        M.group(uuid), M.SCRIPT, uuid, answered_at, margin))
    log.info("credit granted up to %d s", granted)
    return "extended"
end

return M
