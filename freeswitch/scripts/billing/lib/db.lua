-- The one place that runs a statement through freeswitch.Dbh (mod_pgsql), for call
-- set-up (route_worker.lua) and the XML handler. FreeSWITCH facts it relies on
-- (mod_lua freeswitch_lua.cpp, switch_core_sqldb.c, mod_pgsql.c of 1.10):
--   * handles are pooled per DSN; release() puts one back, idle ones are dropped after
--     30 s, "fsctl flush_db_handles" drops every idle one at once;
--   * rows arrive as tables of strings, NULL as "";
--   * a pooled handle whose server went away is not noticed until used: mod_pgsql then
--     retries the reconnection 120 times, one second apart, inside the query, and the
--     first statement on it fails even when the server is back. So after a failure that
--     is not an SQL error (those start with "ERROR:") the idle handles are dropped (they
--     were opened to the same server; at most once per 10 s: flush_idle) and the
--     statement is tried once more on a new connection.
local M = {}

-- Runs `query` on a handle opened with open_dbh(dsn). Returns the rows (a list of tables
-- of strings), or nil and an error text.
local function select_once(open_dbh, dsn, query)
    local opened, dbh = pcall(open_dbh, dsn)
    if not opened or not dbh or not dbh:connected() then
        return nil, "database unreachable"
    end
    local rows = {}
    local ok = dbh:query(query, function(row)
        rows[#rows + 1] = row
    end)
    local err = dbh:last_error()
    dbh:release()
    if not ok or (err ~= nil and err ~= "") then
        return nil, (err ~= nil and err ~= "") and err or "query failed"
    end
    return rows
end

-- The idle handles are dropped at most once per FLUSH_INTERVAL_MS per switch; the moment
-- of the last drop (ms) is kept in the global variable FLUSH_VAR, shared by all threads.
-- A drop is for a server that went away (crash, restart, failover): its idle handles are
-- stale. On a server that is merely slow (overload), dropping at every failed or
-- timed-out set-up made the next calls open new connections on it, a storm that fed the
-- overload (docs/scaling-switches.md). Handles opened after a drop are fresh, so one
-- drop per outage suffices. Returns whether it dropped them.
M.FLUSH_INTERVAL_MS = 10000
M.FLUSH_VAR = "billing_db_flushed_at_ms"

function M.flush_idle(api, now_ms)
    now_ms = now_ms or tonumber(api:getTime()) or 0
    local last = tonumber(api:executeString("global_getvar " .. M.FLUSH_VAR)) or 0
    if now_ms - last < M.FLUSH_INTERVAL_MS and now_ms >= last then
        return false
    end
    api:executeString("global_setvar " .. M.FLUSH_VAR .. "=" .. string.format("%d", now_ms))
    api:executeString("fsctl flush_db_handles")
    return true
end

function M.is_sql_error(err)
    return tostring(err):find("^%s*ERROR:") ~= nil
end

-- select(open_dbh, dsn, query, api): like select_once, and after a connection failure
-- drops the idle handles through `api` (freeswitch.API()) and tries once more on a
-- fresh connection. A statement run twice must be harmless (route_call replaces the
-- hold of a uuid).
function M.select(open_dbh, dsn, query, api)
    if not dsn then
        return nil, "global variable billing_dsn is not set (billing_vars.xml)"
    end
    local rows, err = select_once(open_dbh, dsn, query)
    if rows or not api or M.is_sql_error(err) then
        return rows, err
    end
    M.flush_idle(api)
    local retried, second_err = select_once(open_dbh, dsn, query)
    if retried then
        return retried
    end
    return nil, tostring(err) .. "; again on a new connection: " .. tostring(second_err)
end

return M
