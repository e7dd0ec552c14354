-- How many of the given message ids a session has never stored (a retried write's are
-- already there, or folded into a summary).
-- KEYS: msgs, folded
-- ARGV: message ids
local new, seen = 0, {}
for i = 1, #ARGV do
  local id = ARGV[i]
  if not seen[id] and redis.call('HEXISTS', KEYS[1], id) == 0
      and redis.call('SISMEMBER', KEYS[2], id) == 0 then
    new = new + 1
  end
  seen[id] = true
end
return new
