-- Helpers shared by every script; ARGV[1] is the key prefix. Scripts run atomically, so each
-- operation below sees and leaves a consistent state whatever else runs against the server.
local p = ARGV[1]
-- The lease clock: the server's own time, read inside the script, so that coordinators whose
-- clocks disagree still agree on when a lease ends. Scripts are replicated by effects (the
-- default since Redis 5), so a replica applies the writes rather than re-reading TIME.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function jkey(job) return p .. 'job:' .. job end
local function ukey(unit) return p .. 'unit:' .. unit end
local function terminal(s) return s == 'succeeded' or s == 'failed' or s == 'cancelled' end
-- A lease id is `{unit}~{attempt}~{hex nonce}` (start_schemas::LeaseId; lease.lua builds it).
local function unit_of(lease) return string.match(lease, '^(.*)~%d+~%x+$') end
-- The unit of `lease` when `worker` holds that lease now, else nil.
local function held(worker, lease)
  local unit = unit_of(lease)
  if not unit then return nil end
  local f = redis.call('HMGET', ukey(unit), 'state', 'lease_id', 'worker')
  if f[1] == 'leased' and f[2] == lease and f[3] == worker then return unit end
  return nil
end
-- Ends a unit's lease, leaving the unit in state `to`; returns its job.
local function drop_lease(unit, to, now)
  local u = ukey(unit)
  redis.call('ZREM', p .. 'leases', unit)
  redis.call('HSET', u, 'state', to, 'lease_id', '', 'worker', '')
  local job = redis.call('HGET', u, 'job')
  redis.call('HINCRBY', jkey(job), 'units_leased', -1)
  redis.call('HSET', jkey(job), 'updated_at_ms', now)
  return job
end
-- Returns an expired lease's unit to the front of the queue.
local function expire(unit, now)
  if redis.call('HGET', ukey(unit), 'state') ~= 'leased' then
    redis.call('ZREM', p .. 'leases', unit)
    return
  end
  local job = drop_lease(unit, 'pending', now)
  redis.call('HINCRBY', jkey(job), 'lease_expirations', 1)
  if not terminal(redis.call('HGET', jkey(job), 'state')) then
    redis.call('LPUSH', p .. 'pending', unit)
  end
end
