-- Uncount n memories: reserved and not added, or removed. Never below zero (memories stored
-- before the count existed may be removed).
-- KEYS: memory count
-- ARGV: n
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left < 0 then redis.call('SET', KEYS[1], 0) end
return 0
