-- Give back room: n reserved memories that were not added, and each removed memory once,
-- however many deletes (a user's, an expiry sweep's) report it.
-- KEYS: memory count, then one "gone" mark per removed memory
-- ARGV: n, mark ttl ms
local released = tonumber(ARGV[1])
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], 1, 'NX', 'PX', ARGV[2]) then released = released + 1 end
end
if released == 0 then return 0 end
local left = redis.call('DECRBY', KEYS[1], released)
if left < 0 then redis.call('SET', KEYS[1], 0) end
return released
