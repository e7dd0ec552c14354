-- Drop sessions found gone (expired) from the index, and their messages from the ledger,
-- unless a write touched them since they were seen (their score changed): a session recreated
-- meanwhile stays listed. A recreated session's messages not yet in the ledger are covered by
-- its writer's reservation until its own copy counts them.
-- KEYS: session index, message ledger
-- ARGV: (session id, score seen) pairs
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    local held = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
    if held > 0 then
      redis.call('HDEL', KEYS[2], ARGV[i])
      redis.call('HINCRBY', KEYS[2], '_used', -held)
    end
  end
end
return 0
