-- Decodes "schema hex" lines from stdin with the dissectors' EXI runtime, outside Wireshark:
-- prints "MSG name" and one "path<TAB>value" line per valued field, or "ERR bit message";
-- then "END". Usage: lua5.x decode_stdin.lua DATA_DIR < lines
local dir = arg[1]
local function read_text(name)
  local file = io.open(dir .. "/" .. name, "rb")
  if file == nil then return nil end
  local text = file:read("*a")
  file:close()
  return text
end
local exi = assert((loadstring or load)(read_text("exi_runtime.lx"), "=exi_runtime.lx"))()
local runtime = exi.new(read_text)
for line in io.lines() do
  local schema, hex = line:match("^(%S+)%s+(%x*)")
  local data = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  local result, problem = runtime:try_decode(data, schema)
  if result == nil then
    io.write("ERR ", tostring(problem.bit), " ", problem.msg, "\n")
  else
    io.write("MSG ", result.name, "\n")
    for i = 1, result.count do
      local t = result.type[i]
      if t ~= nil and result.value[i] ~= nil and result.value[i] ~= "" then
        io.write(result.path[i], "\t", exi.value_text(result.value[i], t), "\n")
      end
    end
  end
  io.write("END\n")
end
