-- validate: argument guards shared by every script. A bad argument is a caller bug, never an expected
-- outcome: it raises a Redis error before the first write, so the call changes nothing.
local function needInt(v, name, min, max)
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) or n < min or n > max then
    error("ERR bad argument " .. name)
  end
  return n
end

local function needId(v, name)
  if type(v) ~= "string" or #v == 0 or #v > 128 or not string.match(v, "^[%w_%-]+$") then
    error("ERR bad argument " .. name)
  end
  return v
end

-- nowMs: the caller's time (tests drive a fake clock), or "" for Redis's own clock. Production passes "": every
-- process then shares one clock, so a host whose clock is off can neither prolong nor cut short anyone's hold.
local function nowArg(v, name)
  if v == "" then
    local t = redis.call("TIME")
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return needInt(v, name, 0, 1e14)
end

local function optId(v, name)
  if v == "" then return "" end
  return needId(v, name)
end

local function split(s, sep)
  local out = {}
  if s == nil or s == "" then return out end
  local from = 1
  while true do
    local at = string.find(s, sep, from, true)
    if not at then out[#out + 1] = string.sub(s, from); return out end
    out[#out + 1] = string.sub(s, from, at - 1)
    from = at + #sep
  end
end

local function ms(n)
  return string.format("%.0f", n)
end
