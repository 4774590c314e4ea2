-- Started by route.lua with `luarun billing/route_query.lua <call uuid>`: asks the
-- database call set-up's question in a thread of its own and hands the answer back
-- to the call (lib/offload.lua says why). The logic lives in lib/route_worker.lua.
local logging = require("billing.lib.log")
local route_worker = require("billing.lib.route_worker")

local uuid = argv[1]
local log = logging.new(freeswitch.consoleLog, uuid)
local ok, err = pcall(route_worker.run, uuid, freeswitch.API(),
    function(dsn) return freeswitch.Dbh(dsn) end, freeswitch.getGlobalVariable("billing_dsn"), log)
if not ok then
    log.err("route query worker failed: %s", tostring(err))
end
