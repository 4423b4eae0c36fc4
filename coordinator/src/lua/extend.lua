-- ARGV: prefix, worker, ttl_ms, lease ids...; returns the revoked ones.
local worker = ARGV[2]
local now = now_ms()
local ttl = tonumber(ARGV[3])
local wkey = p .. 'worker:' .. worker
if redis.call('EXISTS', wkey) == 1 then redis.call('HSET', wkey, 'last_seen_ms', now) end
local revoked = {}
for i = 4, #ARGV do
  local lease = ARGV[i]
  local unit = held(worker, lease)
  if not unit then
    table.insert(revoked, lease)
  else
    local u = ukey(unit)
    local job = redis.call('HGET', u, 'job')
    if tonumber(redis.call('HGET', u, 'expires_ms')) <= now then
      expire(unit, now)
      table.insert(revoked, lease)
    elseif terminal(redis.call('HGET', jkey(job), 'state')) then
      drop_lease(unit, 'dropped', now)
      table.insert(revoked, lease)
    else
      redis.call('HSET', u, 'expires_ms', now + ttl)
      redis.call('ZADD', p .. 'leases', now + ttl, unit)
    end
  end
end
return revoked
