-- Dialplan: <action application="lua" data="billing/route.lua"/>
-- Asks billing.route_call whether and where this call may go, then bridges it or
-- refuses it. The logic lives in lib/router.lua; this file only hands it the host
-- objects. Any error fails closed: a call that billing cannot account for never
-- goes through (mod_lua would otherwise log the error and continue the dialplan).
local config = require("billing.lib.config")
local logging = require("billing.lib.log")
local router = require("billing.lib.router")

local log = logging.new(freeswitch.consoleLog, session:getVariable("uuid"))
local ok, err = pcall(function()
    local cfg = config.load(freeswitch.getGlobalVariable)
    router.run(session, function(dsn) return freeswitch.Dbh(dsn) end, cfg, log)
end)
if not ok then
    router.fail_closed(session, log, "script error: " .. tostring(err))
end
