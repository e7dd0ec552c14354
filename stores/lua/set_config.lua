-- Set or clear (empty value) per-session settings; creates the session if it is new.
-- KEYS: meta, order, msgs, folded
-- ARGV: default_ttl, now_ms, then (field, value) pairs
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[2])
redis.call('HSET', KEYS[1], 'last_at', ARGV[2])
refresh_ttl(ARGV[1])
return redis.call('HGETALL', KEYS[1])
