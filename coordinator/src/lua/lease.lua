-- ARGV: prefix, worker, ttl_ms, max_units, nonce (8 hex digits)
local worker = ARGV[2]
local now = now_ms()
local ttl = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local nonce = ARGV[5]
local wkey = p .. 'worker:' .. worker
if redis.call('EXISTS', wkey) == 0 then return redis.error_reply('UNKNOWN_WORKER') end
redis.call('HSET', wkey, 'last_seen_ms', now)
redis.call('PEXPIRE', wkey, 86400000)
local wsha = redis.call('HGET', wkey, 'model_sha256') or ''
for _, unit in ipairs(redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', now, 'LIMIT', 0, 1000)) do
  expire(unit, now)
end
local out = {}
local skipped = {}
local scanned = 0
while #out < want and scanned < want * 8 + 16 do
  local unit = redis.call('LPOP', p .. 'pending')
  if not unit then break end
  scanned = scanned + 1
  local u = ukey(unit)
  local f = redis.call('HMGET', u, 'job', 'state')
  if f[1] and f[2] == 'pending' then
    local j = jkey(f[1])
    local g = redis.call('HMGET', j, 'state', 'model_sha256')
    if g[1] and not terminal(g[1]) then
      if g[2] and g[2] ~= '' and g[2] ~= wsha then
        table.insert(skipped, unit)
      else
        local attempt = redis.call('HINCRBY', u, 'leases', 1) - 1
        -- The format of start_schemas::LeaseId.
        local lease = unit .. '~' .. attempt .. '~' .. nonce
        local exp = now + ttl
        redis.call('HSET', u, 'state', 'leased', 'lease_id', lease, 'worker', worker, 'expires_ms', exp)
        redis.call('ZADD', p .. 'leases', exp, unit)
        redis.call('HINCRBY', j, 'units_leased', 1)
        if g[1] == 'queued' then redis.call('HSET', j, 'state', 'running') end
        redis.call('HSET', j, 'updated_at_ms', now)
        table.insert(out, {unit, f[1], lease, exp, attempt, redis.call('HGET', u, 'problems'),
          redis.call('HGET', j, 'spec')})
      end
    end
  end
end
for _, unit in ipairs(skipped) do redis.call('RPUSH', p .. 'pending', unit) end
return out
