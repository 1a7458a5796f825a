-- stockTotals: the free and held tickets of an event, summed over the tiers of its inventory HASH
--   (fields "free:<tierId>" and "held:<tierId>"); returns free, held.
local function stockTotals(invKey)
  local free, held = 0, 0
  local inv = redis.call("HGETALL", invKey)
  for i = 1, #inv, 2 do
    local f = inv[i]
    if string.sub(f, 1, 5) == "free:" then free = free + tonumber(inv[i + 1])
    elseif string.sub(f, 1, 5) == "held:" then held = held + tonumber(inv[i + 1]) end
  end
  return free, held
end
