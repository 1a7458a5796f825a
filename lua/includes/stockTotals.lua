-- stockTotals: the free and held tickets of an event that can still reach the waiting room's line, summed over the
--   tiers of its inventory HASH (fields "free:<tierId>" and "held:<tierId>"); returns free, held.
--   A tier whose waitlist is open (meta "wl:<tierId>", lua/joinWaitlist) is left out: its free tickets are not on
--   general sale (holdGeneral sees none) and its held tickets, when they come back, are offered to the waitlist
--   (lua/offerWaitlist), so admitting people against them would only admit people who find nothing.
local function stockTotals(invKey, metaKey)
  local free, held = 0, 0
  local inv = redis.call("HGETALL", invKey)
  local listed = {}
  for i = 1, #inv, 2 do
    local f = inv[i]
    local kind = string.sub(f, 1, 5)
    if kind == "free:" or kind == "held:" then
      local tier = string.sub(f, 6)
      if listed[tier] == nil then listed[tier] = redis.call("HEXISTS", metaKey, "wl:" .. tier) == 1 end
      if not listed[tier] then
        if kind == "free:" then free = free + tonumber(inv[i + 1]) else held = held + tonumber(inv[i + 1]) end
      end
    end
  end
  return free, held
end
