-- When a worker should next look at a session's extraction job: the server's clock plus a
-- delay, so every server process measures due times by one clock.
-- KEYS: extraction queue
-- ARGV: member ("tenant:session"), delay ms, mode: 'sooner' (add, or only bring an existing
--       job forward: a later write never postpones an earlier one's due time) or 'set'
local due = now_ms() + tonumber(ARGV[2])
if ARGV[3] == 'sooner' then
  redis.call('ZADD', KEYS[1], 'LT', due, ARGV[1])
else
  redis.call('ZADD', KEYS[1], due, ARGV[1])
end
return due
