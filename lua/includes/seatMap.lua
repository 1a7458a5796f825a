-- seatMap: assigned seating (needs includes/validate). Each section is one string in the smap HASH, one
-- character per seat, row-major: "." free, "h" held, "s" sold. A seat has exactly one id, "<section>-<row>-<number>":
-- 1-16 ASCII letters or digits, then row and number in decimal, 1 to 9999, without sign, space or leading zero
-- ("A-01-1" is not another spelling of "A-1-1": it is no seat at all, since Postgres knows only the canonical id).
--   sectionInfo(secKey, section) -> tierId, rows, seatsPerRow | nil
--   parseSeat(seatId) -> section, row, number of a canonical id | nil (a buyer's input: anything else is refused)
--   rewriteSeats(map, indexes, ch) -> the map with those characters replaced (each index once, never past the end,
--     so the map never changes length)
--   moveHoldSeats(k, tierId, count, seatsCsv, fromField, toField, ch): moves a hold's tickets between the
--     inventory counters (free/held/sold) and, for seated holds, rewrites its seats to ch.
local function sectionInfo(secKey, section)
  local v = redis.call("HGET", secKey, section)
  if not v then return nil end
  local tier, rows, per = string.match(v, "^([%w_%-]+),(%d+),(%d+)$")
  return tier, tonumber(rows), tonumber(per)
end

local function parseSeat(seatId)
  local section, row, num = string.match(seatId, "^(%w+)%-([1-9]%d?%d?%d?)%-([1-9]%d?%d?%d?)$")
  if not section or #section > 16 then return nil end
  return section, tonumber(row), tonumber(num)
end

-- The seats a hold already took, as it stored them: read as the hold script read them when it took them (a hold made
-- before ids were canonical may spell one "A-01-1"), so giving them back frees exactly the characters it marked.
local function storedSeat(seatId)
  local section, row, num = string.match(seatId, "^(%w+)%-(%d+)%-(%d+)$")
  if not section then return nil end
  return section, tonumber(row), tonumber(num)
end

local function rewriteSeats(map, indexes, ch)
  table.sort(indexes)
  local parts, last = {}, 0
  for _, i in ipairs(indexes) do
    if i > last and i <= #map then
      parts[#parts + 1] = string.sub(map, last + 1, i - 1)
      parts[#parts + 1] = ch
      last = i
    end
  end
  parts[#parts + 1] = string.sub(map, last + 1)
  return table.concat(parts)
end

local function moveHoldSeats(k, tierId, count, seatsCsv, fromField, toField, ch)
  redis.call("HINCRBY", k.inv, fromField .. ":" .. tierId, -count)
  redis.call("HINCRBY", k.inv, toField .. ":" .. tierId, count)
  if seatsCsv == "" then return end
  local bySection = {}
  for _, seatId in ipairs(split(seatsCsv, ",")) do
    local section, row, num = storedSeat(seatId)
    local _, _, per = sectionInfo(k.sec, section)
    bySection[section] = bySection[section] or {}
    table.insert(bySection[section], (row - 1) * per + num)
  end
  for section, indexes in pairs(bySection) do
    redis.call("HSET", k.smap, section, rewriteSeats(redis.call("HGET", k.smap, section), indexes, ch))
  end
end
