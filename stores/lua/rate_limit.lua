-- One request against a tenant's rate limit: GCRA (a token bucket kept as one timestamp, the
-- theoretical arrival time), by the server's clock, so every server process shares it.
-- KEYS: the limiter's state
-- ARGV: emission interval (µs per request), burst (requests allowed at once)
-- Returns 0 when the request may go ahead, or the µs until it would.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat + interval - interval * tonumber(ARGV[2])
if allowed_at > now then return allowed_at - now end
local new_tat = tat + interval
-- Integers stay exact in Lua's doubles up to 2^53 µs (the year 2255).
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
