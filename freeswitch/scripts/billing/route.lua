-- Dialplan: <action application="lua" data="billing/route.lua"/>
-- Asks billing.route_call whether and where this call may go, then bridges it or
-- refuses it. The logic lives in lib/router.lua; the database is asked from another
-- thread (lib/offload.lua) so a database that does not answer cannot hold the call.
-- Any error fails closed: a call that billing cannot account for never goes through
-- (mod_lua would otherwise log the error and continue the dialplan).
local config = require("billing.lib.config")
local logging = require("billing.lib.log")
local offload = require("billing.lib.offload")
local router = require("billing.lib.router")

local uuid = session:getVariable("uuid")
local log = logging.new(freeswitch.consoleLog, uuid)
local ok, err = pcall(function()
    local cfg = config.load(freeswitch.getGlobalVariable)
    router.run(session, offload.asker(freeswitch, session, uuid, cfg.route_timeout_ms), cfg, log)
end)
if not ok then
    router.fail_closed(session, log, "script error: " .. tostring(err))
end
