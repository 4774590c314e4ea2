-- The one place where text becomes SQL. mod_lua's Dbh:query has no bind parameters,
-- so every variable part of a statement goes through literal(): it refuses what could
-- change the meaning of a literal (NUL and other control characters, backslashes,
-- which mean something under standard_conforming_strings=off, and non-strings), then
-- doubles single quotes. Callers validate the shape of a value first (validate.lua);
-- this is the last line of defence, not the only one.
local M = {}

local MAX_LEN = 256

-- Returns the quoted literal ('it''s'), or nil and an error message.
function M.literal(value, max_len)
    if type(value) ~= "string" then
        return nil, "not a string"
    end
    if #value > (max_len or MAX_LEN) then
        return nil, "too long"
    end
    if value:find("[%z\1-\31\127]") then
        return nil, "control character"
    end
    if value:find("\\", 1, true) then
        return nil, "backslash"
    end
    return "'" .. value:gsub("'", "''") .. "'"
end

-- Like literal(), but nil or "" becomes NULL; `cast` (a fixed type name chosen by the
-- caller, never data) is appended to both forms so function overloads resolve.
function M.literal_or_null(value, cast, max_len)
    local suffix = cast and ("::" .. cast) or ""
    if value == nil or value == "" then
        return "NULL" .. suffix
    end
    local quoted, err = M.literal(value, max_len)
    if not quoted then
        return nil, err
    end
    return quoted .. suffix
end

return M
