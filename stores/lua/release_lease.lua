-- Release a reservation whose write stored nothing.
-- KEYS: message ledger, message leases
-- ARGV: lease
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], '_reserved', -tonumber(string.match(ARGV[1], '^(%d+):')))
end
return 0
