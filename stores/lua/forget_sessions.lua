-- Drop sessions found gone from the index, unless a write touched them since they were seen
-- (their score changed): a session recreated meanwhile stays listed.
-- KEYS: session index
-- ARGV: (session id, score seen) pairs
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 0
