-- Wireshark dissectors for CCS charging (ISO 15118 / DIN 70121): V2GTP, SDP (sdp15118) and the
-- EXI messages of DIN 70121, ISO 15118-2, ISO 15118-20 and the supportedAppProtocol handshake.
-- Pure Lua (5.1 to 5.4; tested on Wireshark 4.0 and 4.4); the EXI runtime and the grammar tables
-- live in the folder ccs15118/ beside this file (no *.lua there: Wireshark would run them).
-- Installed by `ccssniff wireshark install`; fields are listed in the README (v2g.*).

local load_chunk = loadstring or load
local floor = math.floor
local byte = string.byte

local function script_dir()
  local source = debug.getinfo(1, "S").source or ""
  return source:match("^@(.*)[/\\][^/\\]*$") or "."
end
local DATA_DIR = script_dir() .. "/ccs15118"

local function read_text(name)
  local file = io.open(DATA_DIR .. "/" .. name, "rb")
  if file == nil then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

-- Each frame leaves short-lived garbage behind (tree items, byte ranges, decoded streams), and
-- with the default pause the collector runs a cycle every time the heap doubles, which cost
-- about a fifth of tshark's time with a display filter: collecting at 4x the live heap halves
-- that work for a larger peak heap (Wireshark's Lua heap is tens of MB with our tables)
pcall(collectgarbage, "setpause", 400)

local exi = assert(load_chunk(assert(read_text("exi_runtime.lx"), "ccs15118/exi_runtime.lx is missing"),
                              "=exi_runtime.lx"))()
local runtime = exi.new(read_text)

---------------------------------------------------------------------------------------------
-- Protocols and fields

local p_v2gtp = Proto("v2gtp", "V2G Transfer Protocol (ISO 15118)")
local p_sdp = Proto("sdp15118", "SECC Discovery Protocol (ISO 15118)")
local p_v2g = Proto("v2g", "V2G EXI message (DIN 70121 / ISO 15118)")

local PAYLOAD_TYPES = {
  [0x8001] = "EXI (SAP, DIN, ISO 15118-2)", [0x8002] = "ISO 15118-20 CommonMessages",
  [0x8003] = "ISO 15118-20 AC", [0x8004] = "ISO 15118-20 DC", [0x8005] = "ISO 15118-20 ACDP",
  [0x8006] = "ISO 15118-20 WPT", [0x9000] = "SDP request", [0x9001] = "SDP response",
}
local ISO20_GRAMMAR = {
  [0x8002] = "iso20_CommonMessages", [0x8003] = "iso20_AC", [0x8004] = "iso20_DC",
  [0x8005] = "iso20_ACDP", [0x8006] = "iso20_WPT",
}

local hf = {
  version = ProtoField.uint8("v2gtp.version", "Protocol version", base.HEX),
  inverse = ProtoField.uint8("v2gtp.inverse_version", "Inverse protocol version", base.HEX),
  payload_type = ProtoField.uint16("v2gtp.payload_type", "Payload type", base.HEX, PAYLOAD_TYPES),
  length = ProtoField.uint32("v2gtp.length", "Payload length", base.DEC),
  payload = ProtoField.bytes("v2gtp.payload", "Payload"),
}
p_v2gtp.fields = { hf.version, hf.inverse, hf.payload_type, hf.length, hf.payload }

local SECURITY = { [0x00] = "TLS", [0x10] = "no transport security" }
local TRANSPORT = { [0x00] = "TCP", [0x10] = "UDP" }
local sf = {
  security = ProtoField.uint8("sdp15118.security", "Security", base.HEX, SECURITY),
  transport = ProtoField.uint8("sdp15118.transport", "Transport protocol", base.HEX, TRANSPORT),
  address = ProtoField.ipv6("sdp15118.address", "SECC address"),
  port = ProtoField.uint16("sdp15118.port", "SECC port", base.DEC),
}
p_sdp.fields = { sf.security, sf.transport, sf.address, sf.port }

local gf = {
  msg = ProtoField.string("v2g.msg", "Message"),
  schema = ProtoField.string("v2g.schema", "Schema"),
  grammar = ProtoField.string("v2g.grammar", "Grammar"),
  session_id = ProtoField.bytes("v2g.session_id", "Session ID"),
  response_code = ProtoField.string("v2g.response_code", "Response code"),
  exi = ProtoField.bytes("v2g.exi", "EXI stream"),
  error = ProtoField.string("v2g.error", "Decode error"),
  empty = ProtoField.string("v2g.empty", "Empty element"),
  EVTargetCurrent = ProtoField.double("v2g.EVTargetCurrent", "EV target current (A)"),
  EVTargetVoltage = ProtoField.double("v2g.EVTargetVoltage", "EV target voltage (V)"),
  EVSEPresentCurrent = ProtoField.double("v2g.EVSEPresentCurrent", "EVSE present current (A)"),
  EVSEPresentVoltage = ProtoField.double("v2g.EVSEPresentVoltage", "EVSE present voltage (V)"),
  EVPresentVoltage = ProtoField.double("v2g.EVPresentVoltage", "EV present voltage (V)"),
  power = ProtoField.double("v2g.power", "EVSE present power (W)"),
  soc = ProtoField.double("v2g.soc", "State of charge (%)"),
}
-- element local name -> cross-schema field
local CROSS = {
  EVTargetCurrent = "EVTargetCurrent", EVTargetVoltage = "EVTargetVoltage",
  EVSEPresentCurrent = "EVSEPresentCurrent", EVSEPresentVoltage = "EVSEPresentVoltage",
  EVPresentVoltage = "EVPresentVoltage", EVRESSSOC = "soc", PresentSOC = "soc",
}

-- the order they are shown in (pairs would follow the hash order of the run)
local CROSS_ORDER = { "EVTargetCurrent", "EVTargetVoltage", "EVSEPresentCurrent", "EVSEPresentVoltage",
                      "EVPresentVoltage", "soc" }

local FTYPES = {
  none = ftypes.NONE, string = ftypes.STRING, bytes = ftypes.BYTES, boolean = ftypes.BOOLEAN,
  double = ftypes.DOUBLE, uint8 = ftypes.UINT8, uint16 = ftypes.UINT16, uint32 = ftypes.UINT32,
  int32 = ftypes.INT32, uint64 = ftypes.UINT64, int64 = ftypes.INT64,
}
local element_field = {}  -- path -> ProtoField
local element_ftype = {}  -- path -> ftype name
do
  local list = {}
  for _, f in pairs(gf) do list[#list + 1] = f end
  for _, spec in ipairs(runtime:data("fields.ltab")) do
    local path, label, ftype, values = spec[1], spec[2], spec[3], spec[4]
    local field
    if values then
      local strings = {}
      for i, name in ipairs(values) do strings[i - 1] = name end
      field = ProtoField.new(label, "v2g." .. path, FTYPES[ftype], strings, base.DEC)
    elseif ftype == "uint8" or ftype == "uint16" or ftype == "uint32" or ftype == "int32"
        or ftype == "uint64" or ftype == "int64" then
      field = ProtoField.new(label, "v2g." .. path, FTYPES[ftype], nil, base.DEC)
    elseif ftype == "boolean" then
      field = ProtoField.new(label, "v2g." .. path, ftypes.BOOLEAN, nil, base.NONE)
    else
      field = ProtoField.new(label, "v2g." .. path, FTYPES[ftype])
    end
    element_field[path] = field
    element_ftype[path] = ftype
    list[#list + 1] = field
  end
  p_v2g.fields = list
end

local ef = {
  malformed = ProtoExpert.new("v2g.malformed", "Malformed EXI", expert.group.MALFORMED, expert.severity.ERROR),
  assumed = ProtoExpert.new("v2g.schema_assumed", "Schema assumed", expert.group.ASSUMPTION, expert.severity.WARN),
  trailing = ProtoExpert.new("v2g.trailing", "Trailing bytes after the EXI document", expert.group.PROTOCOL, expert.severity.WARN),
  failed = ProtoExpert.new("v2g.failed", "Response code FAILED", expert.group.RESPONSE_CODE, expert.severity.WARN),
  bad_version = ProtoExpert.new("v2gtp.bad_version", "Bad V2GTP version", expert.group.MALFORMED, expert.severity.ERROR),
  bad_length = ProtoExpert.new("v2gtp.bad_length", "V2GTP length beyond the data", expert.group.MALFORMED, expert.severity.ERROR),
  unknown_type = ProtoExpert.new("v2gtp.unknown_type", "Unknown V2GTP payload type", expert.group.UNDECODED, expert.severity.WARN),
  bad_sdp = ProtoExpert.new("sdp15118.bad_length", "SDP payload of the wrong length", expert.group.MALFORMED, expert.severity.ERROR),
}
p_v2g.experts = { ef.malformed, ef.assumed, ef.trailing, ef.failed }
p_v2gtp.experts = { ef.bad_version, ef.bad_length, ef.unknown_type }
p_sdp.experts = { ef.bad_sdp }

local SCHEMA_CHOICES = {
  { 1, "auto", 0 }, { 2, "din", 1 }, { 3, "iso2", 2 }, { 4, "iso20", 3 },
}
local SCHEMA_BY_INDEX = { [0] = nil, [1] = "din", [2] = "iso2", [3] = "iso20" }
p_v2g.prefs.default_schema = Pref.enum("Schema without a handshake",
  0, "Protocol assumed for 0x8001 payloads of a connection whose handshake is not in the trace (auto: try DIN, then ISO 15118-2)",
  SCHEMA_CHOICES, false)
p_v2g.prefs.forced_schema = Pref.enum("Force schema", 0,
  "Decode every 0x8001 payload after the handshake with this protocol (auto: as the handshake says)",
  SCHEMA_CHOICES, false)
p_v2g.prefs.highlight = Pref.bool("Highlight element bytes", false,
  "Give every element its own byte range (slower: about 2 us per item)")

---------------------------------------------------------------------------------------------
-- Schema per TCP conversation (the logic of ccssniff/decode/schema.py)

local NAMESPACES = { ["urn:din:70121:2012:MsgDef"] = "din", ["urn:iso:15118:2:2013:MsgDef"] = "iso2" }
local PROTOCOL_NAMES = { din = "DIN SPEC 70121", iso2 = "ISO 15118-2", iso20 = "ISO 15118-20" }
local GUESS_ORDER = { "din", "iso2" }

-- Charge loops repeat the same few payloads: each is decoded once (results are read-only)
local DECODE_CACHE_SIZE = 4096
local decoded_cache, decoded_count = {}, 0

local function try_decode(data, grammar)
  local per_grammar = decoded_cache[grammar]
  if per_grammar == nil then
    per_grammar = {}
    decoded_cache[grammar] = per_grammar
  end
  local hit = per_grammar[data]
  if hit ~= nil then return hit[1], hit[2] end
  local result, problem = runtime:try_decode(data, grammar)
  if decoded_count >= DECODE_CACHE_SIZE then
    decoded_cache, decoded_count = { [grammar] = {} }, 0
    per_grammar = decoded_cache[grammar]
  end
  per_grammar[data] = { result, problem }
  decoded_count = decoded_count + 1
  return result, problem
end

-- preferences read once per pass: each read of p_v2g.prefs is a call into Wireshark
local highlight = false
local connections = {}   -- tcp.stream -> selector state
local remembered = {}    -- frame * 65536 + PDU index -> grammar or {grammar, note, problem} of the first pass
local announced_ports = {}
local tls_dissector = Dissector.get("tls")

function p_v2g.prefs_changed()
  highlight = p_v2g.prefs.highlight
end

function p_v2g.init()
  highlight = p_v2g.prefs.highlight
  connections = {}
  remembered = {}
  decoded_cache, decoded_count = {}, 0
end

local function protocol_of_namespace(namespace)
  if namespace == nil then return nil end
  if namespace:sub(1, 26) == "urn:iso:std:iso:15118:-20:" then return "iso20" end
  return NAMESPACES[namespace]
end

local function decodes_cleanly(result)
  return result ~= nil and result.trailing <= 0
end

local function field_value(result, path)
  for i = 1, result.count do
    if result.path[i] == path then return result.value[i], result.type[i] end
  end
  return nil
end

local function note_handshake(state, result)
  if result.name == "supportedAppProtocolReq" then
    state.offered = {}
    local namespace = nil
    for i = 1, result.count do
      local name = result.local_name[i]
      if name == "ProtocolNamespace" then namespace = result.value[i]
      elseif name == "SchemaID" and namespace ~= nil then
        state.offered[result.value[i]] = namespace
        namespace = nil
      end
    end
    -- SchemaID precedes nothing else in AppProtocol order: Namespace, Major, Minor, SchemaID, Priority
    return
  end
  state.handshake_done = true
  local chosen = state.offered[field_value(result, "sap.supportedAppProtocolRes.SchemaID")]
  local protocol = protocol_of_namespace(chosen)
  if state.forced == nil and protocol ~= nil then
    state.protocol = protocol
    state.assumed = false
  end
end

local function guess(state, data, failed_protocol, first_problem)
  for _, protocol in ipairs(GUESS_ORDER) do
    if protocol ~= failed_protocol then
      local result, problem = try_decode(data, protocol)
      if decodes_cleanly(result) then
        local previous = state.protocol
        state.protocol = protocol
        state.assumed = true
        local note = previous == nil and ("no handshake seen: assuming " .. PROTOCOL_NAMES[protocol])
          or ("switching assumption from " .. PROTOCOL_NAMES[previous] .. " to " .. PROTOCOL_NAMES[protocol])
        return protocol, result, nil, note
      end
      if problem == nil and result ~= nil then
        problem = { msg = protocol .. ": " .. result.trailing .. " trailing byte(s) after the EXI document", bit = result.bits }
      end
      first_problem = first_problem or problem
    end
  end
  return failed_protocol, nil, first_problem or { msg = "no schema decodes this payload" }, nil
end

-- grammar, result, problem, note for one EXI payload of a connection (first pass)
local function select_and_decode(state, payload_type, data)
  local grammar = ISO20_GRAMMAR[payload_type]
  if grammar ~= nil then
    local note = nil
    if state.protocol == nil then
      state.protocol = "iso20"
      state.assumed = true
      note = string.format("no handshake seen: ISO 15118-20 taken from payload type 0x%04x", payload_type)
    end
    local result, problem = try_decode(data, grammar)
    return grammar, result, problem, note
  end
  if not state.handshake_done then
    local result = try_decode(data, "appHandshake")
    if decodes_cleanly(result) and result.name:sub(1, 20) == "supportedAppProtocol" then
      note_handshake(state, result)
      return "appHandshake", result, nil, nil
    end
    if state.protocol == nil then return guess(state, data, nil, nil) end
  end
  if state.protocol == "din" or state.protocol == "iso2" then
    local result, problem = try_decode(data, state.protocol)
    if result == nil and state.assumed then
      return guess(state, data, state.protocol, problem)
    end
    return state.protocol, result, problem, nil
  end
  if state.protocol == "iso20" then
    local result, problem = try_decode(data, "appHandshake")
    return "appHandshake", result, problem, nil
  end
  return guess(state, data, nil, nil)
end

local function connection_state(pinfo)
  -- the connection's two ports, in a fixed order: a Field extractor for tcp.stream would make
  -- Wireshark build the whole tree of every packet (costing more than all of our decoding), and
  -- addresses as text cost more than the ports tell apart in a charging trace
  local a, b = pinfo.src_port, pinfo.dst_port
  local key = a < b and (a * 65536 + b) or (b * 65536 + a)
  local state = connections[key]
  if state == nil then
    local forced = SCHEMA_BY_INDEX[p_v2g.prefs.forced_schema]
    local default = SCHEMA_BY_INDEX[p_v2g.prefs.default_schema]
    state = { offered = {}, handshake_done = false, forced = forced, protocol = forced or default,
              assumed = default ~= nil and forced == nil }
    connections[key] = state
  end
  return state
end

---------------------------------------------------------------------------------------------
-- The v2g tree

local SCHEMA_LABEL = { appHandshake = "appHandshake", din = "din", iso2 = "iso2" }

-- TreeItem.add fetched once: a method call on a TreeItem goes through Wireshark's attribute
-- lookup each time, which costs more than the add itself
local tree_add, tree_append_text, tree_set_generated = nil, nil, nil
-- whether someone sees the tree being built (not so in the invisible tree of a filter pass): units,
-- texts and exact byte ranges are only for them
local tree_visible = true

-- In an invisible tree a binary value's range only needs the right length: one range per
-- message and length (the session ID comes twice), set up by dissect_exi for its payload
local bytes_tvb, bytes_end, bytes_length, bytes_range = nil, 0, -1, nil

-- Wireshark 4.0 copies as many bytes from the value as the range is long: give it a range of
-- exactly the value's length (binary values always lie inside their EXI payload)
local function add_bytes(parent, field, range, value)
  if not tree_visible then
    local length = #value
    if length <= bytes_end then
      if length ~= bytes_length then bytes_length, bytes_range = length, bytes_tvb:range(0, length) end
      return tree_add(parent, field, bytes_range, value)
    end
  end
  if range:len() ~= #value then
    if #value > range:tvb():len() then return tree_add(parent, range, "binary value longer than its frame") end
    range = range:tvb():range(0, #value)
  end
  return tree_add(parent, field, range, value)
end

local function add_value(parent, field, ftype, range, value, dt)
  local kind = dt and dt.kind
  if ftype == "string" and type(value) ~= "string" then
    return tree_add(parent, field, range, exi.value_text(value, dt))
  end
  if ftype == "bytes" then return add_bytes(parent, field, range, value) end
  if ftype == "boolean" then return tree_add(parent, field, range, value and 1 or 0) end
  if ftype == "uint64" or ftype == "int64" then
    local number
    if type(value) == "table" then
      local low, high = exi.groups_to_halves(value.groups)
      if ftype == "uint64" then number = UInt64.new(low, high)
      else
        number = Int64.new(low, high)
        if value.negative then number = -number - 1 end
      end
    elseif ftype == "uint64" then number = UInt64.new(value)
    else number = Int64.new(value) end
    return tree_add(parent, field, range, number)
  end
  if kind == "physical" then
    local item = tree_add(parent, field, range, value)
    if dt.unit and tree_visible then tree_append_text(item, " " .. dt.unit) end
    return item
  end
  return tree_add(parent, field, range, value)
end

-- visible: a tree someone sees (-V, the GUI's details); an invisible one (display filter pass)
-- only needs the filterable fields, so items that carry text alone are left out there
local function build_tree(tree, payload_range, result, visible)
  local stack = {}
  local cross = {}
  local response_code, session_id = nil, nil
  local count = result.count
  local paths, depths, values, types, names = result.path, result.depth, result.value, result.type, result.local_name
  local starts, stops = result.start, result.stop
  local range = payload_range
  for i = 1, count do
    local level = depths[i]
    local parent = level > 0 and stack[level - 1] or tree
    local path = paths[i]
    local field = element_field[path]
    local value = values[i]
    local dt = types[i]
    if highlight and visible then
      local first = floor(starts[i] / 8)
      local last = floor((stops[i] + 7) / 8)
      if last > first and last <= payload_range:len() then range = payload_range:range(first, last - first)
      else range = payload_range end
    end
    local item
    if field == nil then
      if visible then
        item = tree_add(parent, range, names[i] .. (value ~= nil and (": " .. exi.value_text(value, dt)) or ""))
      else item = parent end
    elseif value == nil or dt.kind == "empty" or value == "" then
      if element_ftype[path] == "none" then item = tree_add(parent, field, range)
      elseif visible then
        item = tree_add(parent, range, names[i] .. ": (empty)")
        tree_add(item, gf.empty, range, path)
      else
        item = parent
        tree_add(parent, gf.empty, range, path)
      end
    else
      item = add_value(parent, field, element_ftype[path], range, value, dt)
      local name = names[i]
      local cross_name = CROSS[name]
      if cross_name ~= nil and type(value) == "number" then cross[cross_name] = value end
      if name == "ResponseCode" and level == 1 then response_code = exi.value_text(value, dt) end
      if name == "SessionID" then session_id = value end
    end
    stack[level] = item
  end
  return cross, response_code, session_id
end

local function ignore() end

local function dissect_exi(tvb, pinfo, tree, offset, length, data, payload_type, index, visible, has_tree)
  local payload_range = tvb:range(offset, length)
  local key = pinfo.number * 65536 + index
  local grammar, result, problem, note
  local memory = pinfo.visited and remembered[key]
  if memory then
    if type(memory) == "string" then grammar = memory
    else grammar, note = memory[1], memory[2] end
    if grammar ~= nil then result, problem = try_decode(data, grammar) end
    if result == nil and problem == nil then problem = memory[3] end
  else
    grammar, result, problem, note = select_and_decode(connection_state(pinfo), payload_type, data)
    -- most frames need only their grammar's name remembered: no table for them
    remembered[key] = (note == nil and problem == nil and grammar) or { grammar, note, problem }
  end
  local subtree = tree_add(tree, p_v2g, payload_range)
  if note ~= nil then subtree:add_proto_expert_info(ef.assumed, note) end
  if result == nil then
    local where = problem.bit and string.format(" at bit %d (byte %d)", problem.bit, floor(problem.bit / 8)) or ""
    local text = problem.msg .. where
    subtree:add(gf.error, payload_range, text)
    subtree:add(gf.exi, payload_range)
    subtree:add_proto_expert_info(ef.malformed, text)
    subtree:append_text(": malformed")
    return "Malformed EXI"
  end
  if not has_tree then
    -- no tree at all (tshark without -V, -Y or field columns): only the Info column is shown
    return result.name
  end
  local schema = SCHEMA_LABEL[grammar] or "iso20"
  if visible then tree_append_text(subtree, ", " .. grammar .. ": " .. result.name) end
  tree_add(subtree, gf.msg, payload_range, result.name)
  tree_add(subtree, gf.schema, payload_range, schema)
  tree_add(subtree, gf.grammar, payload_range, grammar)
  tree_visible = visible
  bytes_tvb, bytes_end, bytes_length = tvb, offset + length, -1
  local cross, response_code, session_id = build_tree(subtree, payload_range, result, visible)
  -- the generated mark is only shown: an invisible tree goes without it
  local generated = visible and tree_set_generated or ignore
  if session_id ~= nil and session_id ~= "" then
    generated(add_bytes(subtree, gf.session_id, payload_range, session_id))
  end
  if response_code ~= nil then
    generated(tree_add(subtree, gf.response_code, payload_range, response_code))
    if response_code:sub(1, 6) == "FAILED" or response_code:sub(1, 6) == "Failed" then
      subtree:add_proto_expert_info(ef.failed, response_code)
    end
  end
  for _, name in ipairs(CROSS_ORDER) do
    local value = cross[name]
    if value ~= nil then generated(tree_add(subtree, gf[name], payload_range, value)) end
  end
  if cross.EVSEPresentVoltage ~= nil and cross.EVSEPresentCurrent ~= nil then
    generated(tree_add(subtree, gf.power, payload_range, cross.EVSEPresentVoltage * cross.EVSEPresentCurrent))
  end
  bytes_tvb, bytes_range = nil, nil -- nothing of this packet kept past its dissection
  if result.trailing > 0 then
    subtree:add_proto_expert_info(ef.trailing, result.trailing .. " trailing byte(s) after the EXI document")
  end
  return result.name
end

---------------------------------------------------------------------------------------------
-- SDP

local function dissect_sdp(tvb, pinfo, tree, offset, length, payload_type)
  local subtree = tree:add(p_sdp, tvb:range(offset, length))
  if payload_type == 0x9000 then
    if length ~= 2 then subtree:add_proto_expert_info(ef.bad_sdp, "SDP request of " .. length .. " bytes (2 expected)"); return "SDP request (malformed)" end
    subtree:add(sf.security, tvb:range(offset, 1))
    subtree:add(sf.transport, tvb:range(offset + 1, 1))
    return "SDP request, " .. (SECURITY[tvb:range(offset, 1):uint()] or "unknown security")
  end
  if length ~= 20 then subtree:add_proto_expert_info(ef.bad_sdp, "SDP response of " .. length .. " bytes (20 expected)"); return "SDP response (malformed)" end
  subtree:add(sf.address, tvb:range(offset, 16))
  subtree:add(sf.port, tvb:range(offset + 16, 2))
  subtree:add(sf.security, tvb:range(offset + 18, 1))
  subtree:add(sf.transport, tvb:range(offset + 19, 1))
  local port = tvb:range(offset + 16, 2):uint()
  -- the announced port goes to V2GTP whatever the security byte says (EVSEs answer TLS to a
  -- request without it and then talk plain V2GTP); TLS records found there go on to Wireshark's
  -- TLS dissector, whose decrypted data reaches our heuristic
  if not pinfo.visited and port ~= 15118 and not announced_ports[port] then
    announced_ports[port] = true
    DissectorTable.get("tcp.port"):add(port, p_v2gtp)
  end
  return "SDP response, port " .. port
end

---------------------------------------------------------------------------------------------
-- V2GTP

-- the number of this PDU within the frame (dissect_tcp_pdus hands each its own tvb, so offsets
-- do not tell them apart); pinfo.private lives as long as one dissection of the frame
local function pdu_index(pinfo)
  local private = pinfo.private
  local index = (tonumber(private.ccs15118_pdus) or 0) + 1
  private.ccs15118_pdus = tostring(index)
  return index
end

-- several PDUs in one frame: their texts joined in the Info column (assigning a column's text
-- spares the Column object that cols.info:set needs)
local function show_columns(pinfo, protocol, text, index)
  local cols = pinfo.cols
  cols.protocol = protocol
  if index > 1 then cols.info:append(", " .. text)
  else cols.info = text end
end

local function dissect_pdu(tvb, pinfo, tree)
  local available = tvb:len()
  local index = pdu_index(pinfo)
  tree_add = tree_add or tree.add
  tree_append_text = tree_append_text or tree.append_text
  tree_set_generated = tree_set_generated or tree.set_generated
  -- visible is nil on Wireshark versions without the attribute; without any tree (tshark
  -- without -V, -Y or field columns) only the columns are filled
  local visible = tree.visible ~= false
  local has_tree = visible or not tostring(tree):find("has item=false", 1, true)
  local subtree
  if visible or available < 8 then
    subtree = tree_add(tree, p_v2gtp, tvb:range(0, available >= 8 and 8 or available))
  else
    subtree = tree_add(tree, p_v2gtp)
  end
  if available < 8 then
    pinfo.cols.protocol:set("V2GTP")
    subtree:add_proto_expert_info(ef.bad_length, "V2GTP header cut short")
    return available
  end
  -- the whole PDU in one call (from dissect_tcp_pdus the tvb holds exactly one)
  local raw = tvb:raw(0, available)
  local version, inverse, type_high, type_low, l1, l2, l3, l4 = byte(raw, 1, 8)
  local payload_type = type_high * 256 + type_low
  local length = ((l1 * 256 + l2) * 256 + l3) * 256 + l4
  if visible then
    tree_add(subtree, hf.version, tvb:range(0, 1))
    tree_add(subtree, hf.inverse, tvb:range(1, 1))
    tree_add(subtree, hf.payload_type, tvb:range(2, 2))
    tree_add(subtree, hf.length, tvb:range(4, 4))
  elseif has_tree then
    -- nobody sees their bytes: values without a byte range spare a TvbRange each
    tree_add(subtree, hf.version, version)
    tree_add(subtree, hf.inverse, inverse)
    tree_add(subtree, hf.payload_type, payload_type)
    tree_add(subtree, hf.length, length)
  end
  if version ~= 0x01 or inverse ~= 0xFE then
    subtree:add_proto_expert_info(ef.bad_version, string.format("version 0x%02x / inverse 0x%02x (0x01/0xfe expected)", version, inverse))
  end
  if length > available - 8 then
    subtree:add_proto_expert_info(ef.bad_length, string.format("payload length %d, only %d bytes follow", length, available - 8))
    length = available - 8
  end
  local info
  local protocol = "V2GTP"
  if length > 0 then
    if payload_type == 0x8001 or ISO20_GRAMMAR[payload_type] then
      protocol = "V2G"
      local ok, text = pcall(dissect_exi, tvb, pinfo, tree, 8, length, raw:sub(9, 8 + length), payload_type,
                             index, visible, has_tree)
      if not ok then
        subtree:add_proto_expert_info(ef.malformed, "dissector error: " .. tostring(text))
        text = "Malformed EXI"
      end
      info = text
    elseif payload_type == 0x9000 or payload_type == 0x9001 then
      protocol = "SDP15118"
      info = dissect_sdp(tvb, pinfo, tree, 8, length, payload_type)
    else
      tree_add(subtree, hf.payload, tvb:range(8, length))
      subtree:add_proto_expert_info(ef.unknown_type, string.format("payload type 0x%04x", payload_type))
      info = string.format("V2GTP payload type 0x%04x", payload_type)
    end
  else
    info = "V2GTP " .. (PAYLOAD_TYPES[payload_type] or "message") .. " (empty)"
  end
  show_columns(pinfo, protocol, info, index)
  return 8 + length
end

local function pdu_length(tvb, pinfo, offset)
  local l1, l2, l3, l4 = byte(tvb:raw(offset + 4, 4), 1, 4)
  return 8 + ((l1 * 256 + l2) * 256 + l3) * 256 + l4
end

local PORT_TYPE_UDP = 3 -- enum port_type of epan/address.h

local function looks_like_tls_record(tvb)
  local content_type, major, minor = byte(tvb:raw(0, 3), 1, 3)
  return content_type >= 20 and content_type <= 23 and major == 3 and minor >= 1 and minor <= 4
end

function p_v2gtp.dissector(tvb, pinfo, tree)
  if pinfo.port_type == PORT_TYPE_UDP then
    -- UDP (SDP): one datagram, one message
    return dissect_pdu(tvb, pinfo, tree)
  end
  local length = tvb:len()
  if length >= 3 and looks_like_tls_record(tvb) then
    -- TLS on a V2G port: Wireshark's TLS dissector, with TCP's permission to reassemble passed on
    -- (a call through us would use it up); decrypted data comes back through our heuristic on tls
    pcall(function() pinfo.can_desegment = 2 end)
    return tls_dissector:call(tvb, pinfo, tree)
  end
  dissect_tcp_pdus(tvb, tree, 8, pdu_length, dissect_pdu, true)
  return length
end

local function looks_like_v2gtp(tvb)
  if tvb:len() < 8 then return false end
  if tvb:range(0, 1):uint() ~= 0x01 or tvb:range(1, 1):uint() ~= 0xFE then return false end
  local payload_type = tvb:range(2, 2):uint()
  if PAYLOAD_TYPES[payload_type] == nil then return false end
  return tvb:range(4, 4):uint() <= 0x100000
end

local function heuristic(tvb, pinfo, tree)
  if not looks_like_v2gtp(tvb) then return false end
  pcall(function() pinfo.conversation = p_v2gtp end)
  p_v2gtp.dissector(tvb, pinfo, tree)
  return true
end

---------------------------------------------------------------------------------------------
-- TLS secrets disclosed in the trace (NSS key log lines over UDP, as dsV2Gshark and EVerest
-- send them). Wireshark needs them in a key log file before its first pass to decrypt:
-- `ccssniff wireshark open FILE` collects them and hands them over.

local p_keylog = Proto("keylog15118", "TLS key log line disclosed in the trace")
local kf = {
  label = ProtoField.string("keylog15118.label", "Label"),
  client_random = ProtoField.string("keylog15118.client_random", "Client random"),
  secret = ProtoField.string("keylog15118.secret", "Secret"),
}
p_keylog.fields = { kf.label, kf.client_random, kf.secret }
local NSS_LABELS = {
  CLIENT_RANDOM = true, CLIENT_EARLY_TRAFFIC_SECRET = true, CLIENT_HANDSHAKE_TRAFFIC_SECRET = true,
  SERVER_HANDSHAKE_TRAFFIC_SECRET = true, CLIENT_TRAFFIC_SECRET_0 = true, SERVER_TRAFFIC_SECRET_0 = true,
  EARLY_EXPORTER_SECRET = true, EXPORTER_SECRET = true,
}

local function keylog_heuristic(tvb, pinfo, tree)
  local length = tvb:len()
  if length < 40 or length > 4096 then return false end
  local first = tvb:range(0, 1):uint()
  if first ~= 0x43 and first ~= 0x53 and first ~= 0x45 then return false end -- C, S, E
  local text = tvb:raw(0, length)
  local label = text:match("^([A-Z_0]+) ")
  if label == nil or not NSS_LABELS[label] then return false end
  pinfo.cols.protocol:set("KEYLOG")
  local subtree = tree:add(p_keylog, tvb:range(0, length))
  local count = 0
  local offset = 0
  for line in text:gmatch("[^\r\n]+") do
    local name, random, secret = line:match("^(%S+) (%x+) (%x+)")
    local start = text:find(line, offset + 1, true) - 1
    offset = start + #line
    if name ~= nil then
      local item = subtree:add(tvb:range(start, #line), line:sub(1, 60) .. (#line > 60 and "..." or ""))
      item:add(kf.label, tvb:range(start, #name), name)
      item:add(kf.client_random, tvb:range(start + #name + 1, #random), random)
      item:add(kf.secret, tvb:range(start + #name + #random + 2, #secret), secret)
      count = count + 1
    end
  end
  pinfo.cols.info:set(string.format("TLS key log: %d line(s), %s", count, label))
  return true
end
p_keylog:register_heuristic("udp", keylog_heuristic)

DissectorTable.get("udp.port"):add(15118, p_v2gtp)
DissectorTable.get("tcp.port"):add(15118, p_v2gtp)
p_v2gtp:register_heuristic("tcp", heuristic)
pcall(function() p_v2gtp:register_heuristic("tls", heuristic) end)
