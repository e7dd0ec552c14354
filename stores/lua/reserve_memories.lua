-- Reserve room for n memories: the tenant's count holds its memories and those being added.
-- KEYS: memory count, sweep throttle
-- ARGV: limit (0 = none: only counts), n, sweep interval ms
-- Returns {1, count before} when reserved, {0, count, sweep due (1/0)} when they do not fit.
local limit, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if limit == 0 or used + n <= limit then
  redis.call('INCRBY', KEYS[1], n)
  return {1, used}
end
local due = redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[3]) and 1 or 0
return {0, used, due}
