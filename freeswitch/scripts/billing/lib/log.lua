-- One logging helper: every line starts with "billing" and the call's uuid, so an
-- operator can grep a call through the FreeSWITCH log. consoleLog adds no newline.
local M = {}

function M.new(console_log, call_uuid)
    local prefix = "[billing " .. tostring(call_uuid or "-") .. "] "
    local logger = {}
    for _, level in ipairs({ "err", "warning", "notice", "info", "debug" }) do
        logger[level] = function(fmt, ...)
            local ok, text = pcall(string.format, fmt, ...)
            if not ok then
                text = tostring(fmt)
            end
            console_log(level, prefix .. text .. "\n")
        end
    end
    return logger
end

return M
