-- Settles a reservation: each counter's reserved slot changes by the difference between what
-- the request used and what it reserved, unless that slot no longer counts. With every delta
-- zero, it only reads.
--
-- KEYS[i]: counter hashes. ARGV[3(i-1) + 1 .. +3]: slot, delta, first_live.
-- Returns the used amount and oldest slot (or -1) of each counter afterwards.
local out = {}
for i = 1, #KEYS do
  local base = 3 * (i - 1)
  local slot, delta = ARGV[base + 1], tonumber(ARGV[base + 2])
  local first_live = tonumber(ARGV[base + 3])
  if delta ~= 0 and redis.call('HEXISTS', KEYS[i], slot) == 1 then
    local after = redis.call('HINCRBY', KEYS[i], slot, delta)
    if after <= 0 then
      redis.call('HDEL', KEYS[i], slot)
    end
  end
  local fields = redis.call('HGETALL', KEYS[i])
  local sum, oldest = 0, -1
  for j = 1, #fields, 2 do
    local field_slot = tonumber(fields[j])
    if field_slot >= first_live then
      sum = sum + tonumber(fields[j + 1])
      if oldest == -1 or field_slot < oldest then oldest = field_slot end
    end
  end
  out[#out + 1] = sum
  out[#out + 1] = oldest
end
return out
