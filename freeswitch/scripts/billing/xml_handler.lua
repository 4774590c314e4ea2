-- lua.conf.xml: xml-handler-script = billing/xml_handler.lua,
--               xml-handler-bindings = directory,configuration
-- Runs in a fresh Lua state per request with the globals XML_REQUEST and params;
-- answers by setting the global XML_STRING. The logic lives in lib/xmlhandler.lua.
local config = require("billing.lib.config")
local logging = require("billing.lib.log")
local xmlhandler = require("billing.lib.xmlhandler")

local log = logging.new(freeswitch.consoleLog, "xml")
local ok, result = pcall(function()
    local cfg = config.load(freeswitch.getGlobalVariable)
    return xmlhandler.handle(XML_REQUEST, params, {
        open_dbh = function(dsn) return freeswitch.Dbh(dsn) end,
        cfg = cfg,
        log = log,
        api = freeswitch.API(),
    })
end)
if ok then
    XML_STRING = result
else
    log.err("xml_handler error, answering not found: %s", tostring(result))
    XML_STRING = xmlhandler.NOT_FOUND
end
