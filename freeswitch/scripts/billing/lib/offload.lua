-- Call set-up's one database question, asked from another thread so that the call
-- can give up waiting.
--
-- Why: mod_pgsql cannot be told to stop waiting. On a pooled connection whose server
-- went away it retries the reconnection 120 times, one second apart, inside the query
-- (mod_pgsql.c db_is_up), and a server that does not answer at all keeps a query for
-- 10 s. A call's own thread blocked there cannot even send its SIP refusal. So route.lua
-- puts the statement in a channel variable, starts billing/route_query.lua with
-- `luarun` (a thread of its own), and waits for the answer in another channel variable
-- for at most billing_route_timeout_ms; then it refuses the call (fail closed) while the
-- worker may still be stuck. A worker that answers late finds the call gone and its
-- answer is dropped; route_call refuses to place a hold for a call whose CDR is already
-- in (sql/procedures/11_route_call.sql).
--
-- The answer travels through the API command uuid_setvar, whose argument parser strips
-- quotes and backslashes and splits on spaces, so it is percent-encoded:
--   "r;" rows            rows separated by ";", a row's columns as name=value pairs
--                         joined by "&", names and values percent-encoded
--   "e;" message          an error, percent-encoded
local db = require("billing.lib.db")

local M = {}

M.QUERY_VAR = "billing_route_query"
M.ANSWER_VAR = "billing_route_answer"
M.WORKER = "billing/route_query.lua"

local function escape(text)
    return (tostring(text):gsub("[^A-Za-z0-9_.:/@+-]", function(c)
        return string.format("%%%02X", c:byte())
    end))
end

local function unescape(text)
    return (text:gsub("%%(%x%x)", function(hex)
        return string.char(tonumber(hex, 16))
    end))
end

function M.encode_rows(rows)
    local encoded = {}
    for i, row in ipairs(rows) do
        local pairs_ = {}
        local names = {}
        for name in pairs(row) do
            names[#names + 1] = name
        end
        table.sort(names)
        for _, name in ipairs(names) do
            pairs_[#pairs_ + 1] = escape(name) .. "=" .. escape(row[name])
        end
        encoded[i] = table.concat(pairs_, "&")
    end
    return "r;" .. table.concat(encoded, ";")
end

function M.encode_error(message)
    return "e;" .. escape(message)
end

-- Returns the rows, or nil and the error the worker reported.
function M.decode(answer)
    if type(answer) ~= "string" then
        return nil, "no answer"
    end
    local kind, body = answer:match("^([re]);(.*)$")
    if kind == "e" then
        return nil, unescape(body)
    end
    if kind ~= "r" or not body:match("^[A-Za-z0-9_.:/@+%%=&;-]*$") then
        return nil, "malformed answer from the route worker"
    end
    local rows = {}
    for encoded in (body .. ";"):gmatch("([^;]*);") do
        if encoded ~= "" then
            local row = {}
            for name, value in encoded:gmatch("([^&=]+)=([^&]*)") do
                row[unescape(name)] = unescape(value)
            end
            rows[#rows + 1] = row
        end
    end
    return rows
end

-- The waiting side, in the call's thread. host: { session, api, sleep(ms), now_ms() }.
-- Returns the rows; or nil, an error text and "timeout" / "gone" / "error".
function M.ask(host, uuid, query, timeout_ms)
    local session = host.session
    session:setVariable(M.ANSWER_VAR, nil)
    session:setVariable(M.QUERY_VAR, query)
    local started = host.api:executeString("luarun " .. M.WORKER .. " " .. uuid)
    if type(started) ~= "string" or not started:match("^%+OK") then
        session:setVariable(M.QUERY_VAR, nil)
        return nil, "luarun " .. M.WORKER .. " failed: " .. tostring(started), "error"
    end
    local began = host.now_ms()
    local deadline = began + timeout_ms
    while true do
        local answer = session:getVariable(M.ANSWER_VAR)
        if answer ~= nil and answer ~= "" then
            session:setVariable(M.ANSWER_VAR, nil)
            session:setVariable(M.QUERY_VAR, nil)
            local rows, err = M.decode(answer)
            return rows, err, rows and nil or "error"
        end
        if not session:ready() then
            return nil, "caller hung up while the database was asked", "gone"
        end
        local now = host.now_ms()
        if now >= deadline then
            session:setVariable(M.QUERY_VAR, nil)
            -- The worker is most likely stuck on a pooled handle whose server went away
            -- (a crash, a failover). Its idle siblings in the pool were opened to the same
            -- server: drop them now, so the next calls connect afresh (refused at once while
            -- no primary is up, routed as soon as one is) instead of each waiting here on
            -- a stale one. The stuck handle is in use and is not touched.
            -- At most once per 10 s per switch (db.flush_idle says why).
            db.flush_idle(host.api, now)
            return nil, string.format("no answer from the database within %d ms", timeout_ms), "timeout"
        end
        -- 1 ms steps while an answer is due (a healthy route_call takes a few ms), then 5.
        host.sleep(now - began < 50 and 1 or 5)
    end
end

-- ask(query) for router.run, from mod_lua's host objects (route.lua passes them in).
function M.asker(freeswitch, session, uuid, timeout_ms)
    local api = freeswitch.API()
    local host = {
        session = session,
        api = api,
        sleep = freeswitch.msleep,
        now_ms = function() return tonumber(api:getTime()) end,
    }
    return function(query)
        return M.ask(host, uuid, query, timeout_ms)
    end
end

return M
