-- Claim up to `limit` due extraction jobs: each moves lease ms into the future, so a worker
-- that dies with it leaves it due again once the lease is over (at least once).
-- KEYS: extraction queue
-- ARGV: limit, lease ms
-- Returns the claimed members.
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for i = 1, #due do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), due[i])
end
return due
