"""The Redis side of the limits engine: Lua scripts run atomically inside Redis.

RESERVE checks every counter of a request and reserves them all or none, in one round trip:
that is what makes a limit exact across gateway instances, and all-or-nothing across scopes.
Requests of one workspace that arrive together share the round trip (coalesce.py).
The arithmetic mirrors gcra.py and memory.py (integers below 2^53, exact in Lua's doubles).
Numbers passed to redis.call are formatted with %d: Lua would print large ones as 1e+15.

Counter layout (all names share the request's {workspace} hash tag, so one slot):
- RATE   hash  l (level, units x 60000), t (ms)
- WINDOW hash  s (settled), h (held), b (ms it was created), r:<request id> (each hold);
         <key>:z  zset of hold expiries;  <key>:a  the once-per-window alert flag
- SLOTS  zset  request id -> start ms
- {workspace}:tickets  zset  request id -> expiry ms: an admitted request whose settlement is
  still to come. SETTLE applies a request's settlement only if it removes its ticket, so a
  settlement sent again (its reply was lost) is applied once.
- {workspace}:fwd:<request id>  string, an hour: its forwarded usage was applied.
"""

from __future__ import annotations

_COMMON = """
local P = 60000
local function int(x) return string.format('%d', x) end
-- A WINDOW counter's holds whose time is up (a crashed request's, a lapsed lease's) end.
local function purge(key, now)
  local z = key .. ':z'
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', int(now), 'LIMIT', 0, 200)
  for _, id in ipairs(expired) do
    local a = redis.call('HGET', key, 'r:' .. id)
    if a then
      redis.call('HINCRBY', key, 'h', int(-tonumber(a)))
      redis.call('HDEL', key, 'r:' .. id)
    end
    redis.call('ZREM', z, id)
  end
end
"""

# Both scripts take a batch of requests (one or more; all keys of one {workspace} slot), each
# checked or settled as if alone, in arrival order: batching saves round trips and client
# work, never changes a result.
# KEYS: the batch's tickets, then the checks of every request, in order.  ARGV: per request:
# request_id, now_ms, n (its number of checks), ticket_ms (0: no ticket), then per check:
# kind, limit, amount, ttl_ms, hold_ms, seed (seed: '-' none needed, '?' needed, or a value).
# Returns per request: its reply's length, then {0, missing...} | {1, index, wait_ms, value,
# ...} | {2, remaining, reset_ms, ...} (indexes 1-based within the request).
RESERVE = (
    _COMMON
    + """
local function reserve(rid, now, k, n, ticket, base)
  local missing, refused, found = {}, {}, {}
  local function refuse(i, wait, value)
    table.insert(refused, i); table.insert(refused, wait); table.insert(refused, value)
  end
  for i = 1, n do
    local b = base + (i - 1) * 6
    local kind, limit = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
    local amount, hold, seed = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5]), ARGV[b + 6]
    local key = KEYS[k + i]
    if kind == 1 then
      local v = redis.call('HMGET', key, 'l', 't')
      local level = tonumber(v[1]) or 0
      local elapsed = now - (tonumber(v[2]) or now)
      if elapsed >= P then level = 0 elseif elapsed > 0 then
        level = math.max(0, level - elapsed * limit) end
      local excess = level + amount * P - limit * P
      if amount > limit then refuse(i, -1, level)
      elseif excess > 0 then refuse(i, math.ceil(excess / limit), level) end
      found[i] = level
    elseif kind == 2 then
      purge(key, now)
      local v = redis.call('HMGET', key, 's', 'h')
      local s = tonumber(v[1])
      if s == nil then
        if seed == '?' then table.insert(missing, i); s = 0
        elseif seed == '-' then s = 0 else s = tonumber(seed) end
      end
      local total = s + (tonumber(v[2]) or 0)
      if limit >= 0 and total + amount > limit then refuse(i, 0, total) end
      found[i] = total
    else
      redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - hold))
      local used = redis.call('ZCARD', key)
      if used >= limit then refuse(i, 0, used) end
      found[i] = used
    end
  end
  if #missing > 0 then table.insert(missing, 1, 0); return missing end
  if #refused > 0 then table.insert(refused, 1, 1); return refused end
  local out = {2}
  if ticket > 0 then
    redis.call('ZADD', KEYS[1], int(now + ticket), rid)
    redis.call('PEXPIRE', KEYS[1], int(ticket))
  end
  for i = 1, n do
    local b = base + (i - 1) * 6
    local kind, limit, amount = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local ttl, hold, seed = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), ARGV[b + 6]
    local key = KEYS[k + i]
    if kind == 1 then
      local level = found[i] + amount * P
      local reset = math.ceil(level / limit)
      redis.call('HSET', key, 'l', int(level), 't', int(now))
      redis.call('PEXPIRE', key, int(reset + 1000))
      table.insert(out, math.max(0, math.floor((limit * P - level) / P)))
      table.insert(out, reset)
    elseif kind == 2 then
      local start = (seed ~= '-' and seed ~= '?') and seed or '0'
      if redis.call('HSETNX', key, 's', start) == 1 then
        redis.call('HSET', key, 'b', int(now))  -- born (see forwarded usage in SETTLE)
      end
      redis.call('HINCRBY', key, 'h', int(amount))
      redis.call('HSET', key, 'r:' .. rid, int(amount))
      redis.call('ZADD', key .. ':z', int(now + hold), rid)
      redis.call('PEXPIRE', key, int(ttl))
      redis.call('PEXPIRE', key .. ':z', int(ttl))
      if limit >= 0 then table.insert(out, limit - found[i] - amount) else table.insert(out, -1) end
      table.insert(out, 0)
    else
      redis.call('ZADD', key, int(now), rid)
      redis.call('PEXPIRE', key, int(hold))
      table.insert(out, limit - found[i] - 1)
      table.insert(out, 0)
    end
  end
  return out
end
local out, k, a = {}, 1, 0
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(tonumber(ARGV[2])))
while a < #ARGV do
  local rid, now, n = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local reply = reserve(rid, now, k, n, tonumber(ARGV[a + 4]), a + 4)
  table.insert(out, #reply)
  for _, v in ipairs(reply) do table.insert(out, v) end
  k, a = k + n, a + 4 + n * 6
end
return out
"""
)

# KEYS: the batch's tickets, then the items of every request, in order.  ARGV: per request:
# request_id, now_ms, n, mode (0: plain; 1: applied only if its ticket is there, which it
# removes; 2: forwarded, now_ms being when it was settled locally), then per item: kind,
# limit, value, alert_at ('-' for none), alert_ttl_ms.
# Returns {request, index, settled total, ...} (both 1-based, the index within its request)
# of the items whose alert fired now.
SETTLE = (
    _COMMON
    + """
local fired, k, a, r = {}, 1, 0, 0
while a < #ARGV do
  local rid, now, n = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  r = r + 1
  -- Settled already (a reply lost on the way back), or admitted over an hour ago: skipped.
  -- Forwarded (mode 2): usage of a request admitted by an instance's own counters while
  -- Redis was away, applied once (a marker per request) to WINDOW counters born before it.
  local mode = ARGV[a + 4]
  local skip
  if mode == '2' then
    local marker = string.sub(KEYS[1], 1, -8) .. 'fwd:' .. rid
    skip = not redis.call('SET', marker, '1', 'NX', 'PX', 3600000)
  else
    skip = mode == '1' and redis.call('ZREM', KEYS[1], rid) == 0
  end
  for i = 1, skip and 0 or n do
    local b = a + 4 + (i - 1) * 5
    local kind, limit, value = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local alert, alert_ttl, key = ARGV[b + 4], ARGV[b + 5], KEYS[k + i]
    if kind == 1 then
      local v = redis.call('HMGET', key, 'l', 't')
      if v[1] or value > 0 then
        local level = tonumber(v[1]) or 0
        local elapsed = now - (tonumber(v[2]) or now)
        if elapsed >= P then level = 0 elseif elapsed > 0 then
          level = math.max(0, level - elapsed * limit) end
        level = math.max(0, level + value * P)
        redis.call('HSET', key, 'l', int(level), 't', int(now))
        redis.call('PEXPIRE', key, int(math.ceil(level / limit) + 1000))
      end
    elseif kind == 2 then
      local held = redis.call('HGET', key, 'r:' .. rid)
      if held then
        redis.call('HINCRBY', key, 'h', int(-tonumber(held)))
        redis.call('HDEL', key, 'r:' .. rid)
        redis.call('ZREM', key .. ':z', rid)
      end
      local live = redis.call('HEXISTS', key, 's') == 1
      if live and mode == '2' then live = (tonumber(redis.call('HGET', key, 'b')) or 0) <= now end
      if live then
        local s = redis.call('HINCRBY', key, 's', int(value))
        if alert ~= '-' and s >= tonumber(alert) then
          if redis.call('SET', key .. ':a', '1', 'NX', 'PX', alert_ttl) then
            table.insert(fired, r); table.insert(fired, i); table.insert(fired, s) end
        end
      end
    else
      redis.call('ZREM', key, rid)
    end
  end
  k, a = k + n, a + 4 + n * 5
end
return fired
"""
)

# KEYS: a WINDOW counter.  ARGV: delta.  Adds to its settled total only if it exists.
ADD_TO_WINDOW = """
if redis.call('HEXISTS', KEYS[1], 's') == 1 then
  return redis.call('HINCRBY', KEYS[1], 's', ARGV[1])
end
return false
"""

# A lease (leases.py): an instance's allowance on one counter, renewed with the usage it
# admitted. KEYS: counters of one {workspace}.  ARGV: now_ms, lease id (the instance's),
# lease_ms, share, then per counter: seq, kind, limit, used, need, want, least, ttl_ms, since.
# `used`: RATE, the units to add to the meter (admitted + corrections - the last grant, so
# an unused lease is refunded); WINDOW, the usage settled since the last renewal. `need`:
# WINDOW, the holds of requests in flight, always kept. `since`: WINDOW, when the oldest of
# that usage was settled; a counter born after it (seeded from the request log, which has
# it) does not get it again. The new grant beyond `need` is
# min(want, room / share), or nothing below `least`. A counter remembers each lease's last
# seq: a renewal sent again (its reply was lost) changes nothing and answers the same grant.
# Returns per counter: the grant (-1: the counter is gone), the room left beyond it, reset ms.
LEASE = (
    _COMMON
    + """
local now, lid, lease_ms, share = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 1, #KEYS do
  local b = 4 + (i - 1) * 9
  local seq, kind, limit = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local used, need, want = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local least, ttl, since = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8]), tonumber(ARGV[b + 9])
  local key = KEYS[i]
  local fresh = (tonumber(redis.call('HGET', key, 'q:' .. lid)) or 0) < seq
  local function extra(room)
    if limit < 0 then return want end
    local units = math.min(want, math.floor(room / share))
    if units < least then return 0 end
    return units
  end
  if kind == 1 then
    local v = redis.call('HMGET', key, 'l', 't', 'g:' .. lid)
    local level = tonumber(v[1]) or 0
    -- An idle instance's `now` may be old: the meter's time never goes back for it.
    local at = math.max(now, tonumber(v[2]) or now)
    local elapsed = at - (tonumber(v[2]) or at)
    if elapsed >= P then level = 0 elseif elapsed > 0 then
      level = math.max(0, level - elapsed * limit) end
    local grant = tonumber(v[3]) or 0
    if fresh then
      level = math.max(0, level + used * P)
      grant = extra(math.floor((limit * P - level) / P))
      level = level + grant * P
      redis.call('HSET', key, 'l', int(level), 't', int(at), 'q:' .. lid, int(seq),
        'g:' .. lid, int(grant))
      redis.call('PEXPIRE', key, int(math.max(math.ceil(level / limit), lease_ms) + 1000))
    end
    table.insert(out, grant)
    table.insert(out, math.max(0, math.floor((limit * P - level) / P)))
    table.insert(out, math.ceil(level / limit))
  else
    purge(key, now)
    local v = redis.call('HMGET', key, 's', 'h', 'r:' .. lid, 'b')
    if not v[1] then
      table.insert(out, -1); table.insert(out, 0); table.insert(out, 0)
    else
      local s, h, grant = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
      if fresh then
        if (tonumber(v[4]) or 0) > since then used = 0 end
        s = s + used
        h = h - grant
        grant = need + extra(limit - s - h - need)
        h = h + grant
        redis.call('HSET', key, 's', int(s), 'h', int(h), 'q:' .. lid, int(seq))
        if grant > 0 then
          redis.call('HSET', key, 'r:' .. lid, int(grant))
          redis.call('ZADD', key .. ':z', int(now + lease_ms), lid)
        else
          redis.call('HDEL', key, 'r:' .. lid)
          redis.call('ZREM', key .. ':z', lid)
        end
        if ttl > 0 then
          redis.call('PEXPIRE', key, int(ttl))
          redis.call('PEXPIRE', key .. ':z', int(ttl))
        end
      end
      table.insert(out, grant)
      table.insert(out, limit < 0 and -1 or limit - s - h)
      table.insert(out, 0)
    end
  end
end
return out
"""
)
