-- Scheduled by route.lua when a call is answered (api_on_answer: sched_api +N ...
-- luarun billing/reauth.lua <call uuid> <answer epoch> <margin>), and then by itself: asks
-- billing.reauthorize_call for another quota of credit before the call's grant runs
-- out, and moves the call's hang-up to the end of the new grant. Runs in a thread of
-- its own; a database that does not answer leaves the hang-up where it was (the call
-- ends with its grant, CONTRACT 1b). The logic lives in lib/reauth.lua.
local logging = require("billing.lib.log")
local reauth = require("billing.lib.reauth")

local log = logging.new(freeswitch.consoleLog, argv[1])
local ok, err = pcall(reauth.run, { argv[1], argv[2], argv[3] }, freeswitch.API(),
    function(dsn) return freeswitch.Dbh(dsn) end, freeswitch.getGlobalVariable("billing_dsn"), log)
if not ok then
    log.err("re-authorization failed, the call ends with its grant: %s", tostring(err))
end
