-- Building FreeSWITCH XML documents as text. Every attribute value goes through
-- attr(), so a value from the database can never open or close a tag.
local M = {}

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

function M.escape(value)
    local text = tostring(value):gsub("[%z\1-\8\11\12\14-\31]", "")
    return (text:gsub("[&<>\"']", ESCAPES))
end

-- <tag name="x" value="y"/> with attributes in the given order: {{"name", "x"}, ...}
function M.empty_tag(tag, attributes)
    local parts = { "<" .. tag }
    for _, pair in ipairs(attributes) do
        parts[#parts + 1] = string.format(' %s="%s"', pair[1], M.escape(pair[2]))
    end
    return table.concat(parts) .. "/>"
end

function M.param(name, value)
    return M.empty_tag("param", { { "name", name }, { "value", value } })
end

function M.variable(name, value, direction)
    local attributes = { { "name", name }, { "value", value } }
    if direction then
        attributes[#attributes + 1] = { "direction", direction }
    end
    return M.empty_tag("variable", attributes)
end

function M.document(section, body)
    return table.concat({
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        '<document type="freeswitch/xml">',
        string.format('  <section name="%s">', M.escape(section)),
        body,
        "  </section>",
        "</document>",
    }, "\n")
end

return M
