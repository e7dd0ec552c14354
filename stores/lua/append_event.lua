-- Append one event to a stream (events whose change lives outside Redis, e.g. memories).
-- KEYS: stream
-- ARGV: max_len, max_age_ms, kind, at (ms), event JSON
-- Returns the new event's id.
local _, id = append_event(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return id
