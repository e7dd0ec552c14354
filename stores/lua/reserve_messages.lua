-- Reserve room in the tenant's quota of stored messages for a write of up to n new messages.
-- Room is the limit less the messages the ledger counts and the reservations in flight; a
-- reservation is released by the copy of its write's events into the tenant's slot (which
-- counts them), or, once expired, by any later copy of its session's events (see fan_in).
-- KEYS: message ledger, message leases, sweep throttle
-- ARGV: limit, n, lease id (hex), session id, lease ms, sweep interval ms
-- Returns {1, used before, lease} when reserved; {0, used, sweep due (1/0), session ids with
-- expired reservations...} when the write does not fit. A due sweep is one this call claimed
-- for the tenant (at most one per interval across every server process).
local limit, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local used = tonumber(redis.call('HGET', KEYS[1], '_used') or '0')
  + tonumber(redis.call('HGET', KEYS[1], '_reserved') or '0')
if used + n <= limit then
  local lease = n .. ':' .. ARGV[3] .. ':' .. ARGV[4]
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), lease)
  redis.call('HINCRBY', KEYS[1], '_reserved', n)
  return {1, used, lease}
end
local out = {0, used, 0}
if redis.call('SET', KEYS[3], 1, 'NX', 'PX', ARGV[6]) then
  out[3] = 1
  local seen = {}
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 64)
  for i = 1, #expired do
    local session = string.match(expired[i], '^%d+:%x+:(.*)$')
    if not seen[session] then
      seen[session] = true
      out[#out + 1] = session
    end
  end
end
return out
