--[[
  armEvent: load one event's sellable state into Redis: tiers and their counters, sections and their seat
  maps, buyers' counts. "arm" is for a new event and never overwrites; "rebuild" replaces everything
  (the state is computed from Postgres, the system of record, after a Redis loss).

  Invariants: after the call, for every tier cap == free + held + sold, and for seated tiers the seat maps
              of its sections hold exactly free ".", held "h" and sold "s" characters;
              the whole spec is validated before the first write.

  Input:  KEYS[1] meta     HASH  armed, opensAt, maxPerUser, admission
          KEYS[2] inv      HASH  kind:/secs:/cap:/free:/held:/sold:<tier>
          KEYS[3] sec      HASH  section -> "tierId,rows,seatsPerRow"
          KEYS[4] smap     HASH  section -> seat characters
          KEYS[5] buyers   HASH  userId -> tickets held + bought
          ARGV[1] eventId
          ARGV[2] spec JSON {maxPerUser, opensAtMs, admission, tiers: [{id, kind: "ga"|"seated", cap, free, held,
                  sold}], sections: [{id, tier, rows, perRow, map?}], buyers: [ [userId, count] ]}
          ARGV[3] mode "arm" | "rebuild"

  Output: {1} ARMED | {0} ALREADY_ARMED (mode "arm" on an armed event; nothing written)

  Idempotent: arming twice answers ALREADY_ARMED; a rebuild with the same spec writes the same state.
]]
--- @include "includes/validate"

needId(ARGV[1], "eventId")
local mode = ARGV[3]
if mode ~= "arm" and mode ~= "rebuild" then error("ERR bad argument mode") end
local ok, spec = pcall(cjson.decode, ARGV[2])
if not ok or type(spec) ~= "table" then error("ERR bad argument spec: not JSON") end
local k = {meta = KEYS[1], inv = KEYS[2], sec = KEYS[3], smap = KEYS[4], buyers = KEYS[5]}

if mode == "arm" and redis.call("HGET", k.meta, "armed") == "1" then return {0} end

-- validate everything first
local maxPerUser = needInt(spec.maxPerUser, "maxPerUser", 1, 1000)
local opensAt = needInt(spec.opensAtMs, "opensAtMs", 0, 1e14)
local tiers, tierSeats, tierSecs = {}, {}, {}
if type(spec.tiers) ~= "table" or #spec.tiers == 0 then error("ERR bad argument spec.tiers") end
for _, t in ipairs(spec.tiers) do
  local id = needId(t.id, "tier.id")
  if tiers[id] then error("ERR bad argument spec.tiers: duplicate " .. id) end
  if t.kind ~= "ga" and t.kind ~= "seated" then error("ERR bad argument tier.kind") end
  local cap = needInt(t.cap, "tier.cap", 0, 1e9)
  local free, held, sold = needInt(t.free, "tier.free", 0, cap), needInt(t.held, "tier.held", 0, cap),
    needInt(t.sold, "tier.sold", 0, cap)
  if free + held + sold ~= cap then error("ERR bad argument tier " .. id .. ": cap ~= free + held + sold") end
  tiers[id] = {kind = t.kind, cap = cap, free = free, held = held, sold = sold}
  tierSeats[id] = {cap = 0, ["."] = 0, h = 0, s = 0}
  tierSecs[id] = {}
end
local sections, secIds = {}, {}
for _, s in ipairs(type(spec.sections) == "table" and spec.sections or {}) do
  local id = s.id
  if type(id) ~= "string" or not string.match(id, "^%w+$") or #id > 16 then error("ERR bad argument section.id") end
  if sections[id] then error("ERR bad argument sections: duplicate " .. id) end
  local tier = tiers[s.tier]
  if not tier or tier.kind ~= "seated" then error("ERR bad argument section.tier") end
  local rows, per = needInt(s.rows, "section.rows", 1, 1000), needInt(s.perRow, "section.perRow", 1, 1000)
  local map = s.map
  if map == nil then map = string.rep(".", rows * per) end
  if type(map) ~= "string" or #map ~= rows * per or string.find(map, "[^%.hs]") then
    error("ERR bad argument section.map")
  end
  local counts = tierSeats[s.tier]
  counts.cap = counts.cap + rows * per
  for ch, pattern in pairs({["."] = "%.", h = "h", s = "s"}) do
    local _, n = string.gsub(map, pattern, "")
    counts[ch] = counts[ch] + n
  end
  sections[id] = {tier = s.tier, rows = rows, per = per, map = map}
  secIds[#secIds + 1] = id
  table.insert(tierSecs[s.tier], id)
end
for id, t in pairs(tiers) do
  local c = tierSeats[id]
  if t.kind == "seated" and (c.cap ~= t.cap or c["."] ~= t.free or c.h ~= t.held or c.s ~= t.sold) then
    error("ERR bad argument tier " .. id .. ": seat maps disagree with counters")
  end
end
local buyers = {}
for _, b in ipairs(type(spec.buyers) == "table" and spec.buyers or {}) do
  buyers[#buyers + 1] = needId(b[1], "buyer.userId")
  buyers[#buyers + 1] = needInt(b[2], "buyer.count", 1, 1000)
end

-- then write
if mode == "rebuild" then redis.call("DEL", k.meta, k.inv, k.sec, k.smap, k.buyers) end
for id, t in pairs(tiers) do
  redis.call("HSET", k.inv, "kind:" .. id, t.kind, "cap:" .. id, t.cap, "free:" .. id, t.free,
    "held:" .. id, t.held, "sold:" .. id, t.sold)
  if t.kind == "seated" then redis.call("HSET", k.inv, "secs:" .. id, table.concat(tierSecs[id], ",")) end
end
for _, id in ipairs(secIds) do
  local s = sections[id]
  redis.call("HSET", k.sec, id, s.tier .. "," .. s.rows .. "," .. s.per)
  redis.call("HSET", k.smap, id, s.map)
end
for i = 1, #buyers, 1000 do
  redis.call("HSET", k.buyers, unpack(buyers, i, math.min(i + 999, #buyers)))
end
redis.call("HSET", k.meta, "maxPerUser", maxPerUser, "opensAt", ms(opensAt),
  "admission", spec.admission and "1" or "0", "armed", "1")
return {1}
