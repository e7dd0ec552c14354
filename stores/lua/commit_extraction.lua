-- Record an extraction that succeeded: drop the entries it extracted from the head of the
-- backlog, if they are still there (so a stale worker's commit changes nothing), and advance
-- the progress.
-- KEYS: backlog, progress
-- ARGV: the first extracted entry as stored, how many entries, the last extracted seq,
--       progress TTL seconds
-- Returns the entries left in the backlog, or -1 when the head was not the first entry.
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return -1 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('HSET', KEYS[2], 'seq', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'extracted', tonumber(ARGV[2]))
redis.call('HDEL', KEYS[2], 'failures')
redis.call('EXPIRE', KEYS[2], ARGV[4])
return redis.call('LLEN', KEYS[1])
