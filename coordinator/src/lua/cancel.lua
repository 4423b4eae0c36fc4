-- ARGV: prefix, job, reason; returns 0 when the job does not exist.
local j = jkey(ARGV[2])
if redis.call('EXISTS', j) == 0 then return 0 end
if not terminal(redis.call('HGET', j, 'state')) then
  redis.call('HSET', j, 'state', 'cancelled', 'message', ARGV[3], 'updated_at_ms', now_ms())
end
return 1
