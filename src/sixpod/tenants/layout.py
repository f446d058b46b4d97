"""The Redis layout the publisher writes and every reader follows (prefix ``P``, e.g. ``sixpod``).

=================  ======  ==========================================================
key                type    content
=================  ======  ==========================================================
``P:meta``         hash    ``epoch`` (changes on every rebuild), ``revision`` (last
                           published), ``state`` (``building`` | ``ready``: the snapshot
                           marker), ``fence`` (the publisher's fencing token), ``ts``
``P:log``          stream  one entry per published batch, ID ``REVISION-0`` (``-1`` for
                           the snapshot marker that ends a rebuild); fields
                           ``prev``, ``rev``, ``epoch``, ``ts`` (commit time, Unix s),
                           ``ops`` (JSON list, see :mod:`sixpod.tenants.ops`), and
                           ``snapshot`` = ``1`` on the entry that ends a rebuild
``P:app:NAME``     hash    ``owner``, ``shard_seed``, ``settings`` (JSON text)
``P:up:NAME``      hash    ``[address]:port`` -> ``"weight state"``
``P:dom:HOST``     string  the app name (``HOST`` is lower-case A-labels, maybe ``*.``)
``P:vip``          hash    VIP -> ``"state reason"``
``P:node``         hash    node -> ``"state reason"``
``P:cert:DOMAIN``  hash    ``fp``, ``not_after``, ``chain`` (PEM), ``key`` (sealed for
                           the edge nodes, never in clear)
``P:acme:TOKEN``   string  an ACME HTTP-01 key authorization the edges serve
=================  ======  ==========================================================

A consumer bootstraps only when ``P:meta`` says ``state=ready``: it notes ``revision`` R and
``epoch`` E, loads the keys, then applies ``P:log`` entries after R in order (ops are
absolute, so the fuzzy load converges). Following, an entry whose ``prev`` is not the
consumer's revision, or whose ``epoch`` differs, means a gap: bootstrap again. Every write
goes through the scripts below, which check the fencing token, the epoch and the revision
so that a stale publisher cannot write and nothing is applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "sixpod"

    @property
    def meta(self) -> str:
        return f"{self.prefix}:meta"

    @property
    def log(self) -> str:
        return f"{self.prefix}:log"

    @property
    def vip(self) -> str:
        return f"{self.prefix}:vip"

    @property
    def node(self) -> str:
        return f"{self.prefix}:node"

    def app(self, name: str) -> str:
        return f"{self.prefix}:app:{name}"

    def up(self, name: str) -> str:
        return f"{self.prefix}:up:{name}"

    def dom(self, host: str) -> str:
        return f"{self.prefix}:dom:{host}"

    def cert(self, domain: str) -> str:
        return f"{self.prefix}:cert:{domain}"

    def challenge(self, token: str) -> str:
        return f"{self.prefix}:acme:{token}"


# ARGV: prefix, fence, epoch, mode ("log" | "build"), prev, rev, ts, maxlen, ops JSON.
# Returns {status, detail}: OK, DUP (already applied), GAP (Redis is at another revision),
# EPOCH (Redis holds another epoch or is not in the expected state), FENCED.
APPLY = r"""
local p, fence, epoch, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local meta = p .. ':meta'
local m = redis.call('HMGET', meta, 'fence', 'epoch', 'revision', 'state')
if m[1] and tonumber(m[1]) > fence then return {'FENCED', m[1]} end
if m[2] ~= epoch then return {'EPOCH', m[2] or ''} end
if mode == 'log' then
  if m[4] ~= 'ready' then return {'EPOCH', m[4] or ''} end
  local cur = tonumber(m[3])
  if tonumber(ARGV[6]) <= cur then return {'DUP', m[3]} end
  if cur ~= tonumber(ARGV[5]) then return {'GAP', m[3]} end
elseif m[4] ~= 'building' then
  return {'EPOCH', m[4] or ''}
end
for _, op in ipairs(cjson.decode(ARGV[9])) do
  local k = op[1]
  if k == 'ep' then redis.call('HSET', p .. ':up:' .. op[2], op[3], op[4] .. ' ' .. op[5])
  elseif k == 'ep-' then redis.call('HDEL', p .. ':up:' .. op[2], op[3])
  elseif k == 'app' then
    redis.call('HSET', p .. ':app:' .. op[2], 'owner', op[3], 'shard_seed', op[4],
      'settings', op[5])
  elseif k == 'app-' then redis.call('DEL', p .. ':app:' .. op[2], p .. ':up:' .. op[2])
  elseif k == 'dom' then redis.call('SET', p .. ':dom:' .. op[2], op[3])
  elseif k == 'dom-' then redis.call('DEL', p .. ':dom:' .. op[2])
  elseif k == 'vip' then redis.call('HSET', p .. ':vip', op[2], op[3] .. ' ' .. op[4])
  elseif k == 'vip-' then redis.call('HDEL', p .. ':vip', op[2])
  elseif k == 'node' then redis.call('HSET', p .. ':node', op[2], op[3] .. ' ' .. op[4])
  elseif k == 'node-' then redis.call('HDEL', p .. ':node', op[2])
  elseif k == 'cert' then
    redis.call('HSET', p .. ':cert:' .. op[2], 'fp', op[3], 'not_after', op[4],
      'chain', op[5], 'key', op[6])
  elseif k == 'cert-' then redis.call('DEL', p .. ':cert:' .. op[2])
  elseif k == 'acme' then redis.call('SET', p .. ':acme:' .. op[2], op[3])
  elseif k == 'acme-' then redis.call('DEL', p .. ':acme:' .. op[2])
  else return redis.error_reply('unknown op ' .. tostring(k)) end
end
if mode == 'log' then
  redis.call('XADD', p .. ':log', 'MAXLEN', '~', ARGV[8], ARGV[6] .. '-0',
    'prev', ARGV[5], 'rev', ARGV[6], 'epoch', epoch, 'ts', ARGV[7], 'ops', ARGV[9])
  redis.call('HSET', meta, 'revision', ARGV[6], 'ts', ARGV[7], 'fence', ARGV[2])
end
return {'OK', ARGV[6]}
"""

# ARGV: prefix, fence, new epoch. Starts a rebuild: claims the fence, drops the log.
BEGIN = r"""
local p, fence = ARGV[1], tonumber(ARGV[2])
local meta = p .. ':meta'
local f = redis.call('HGET', meta, 'fence')
if f and tonumber(f) > fence then return {'FENCED', f} end
redis.call('DEL', p .. ':log', meta)
redis.call('HSET', meta, 'fence', ARGV[2], 'epoch', ARGV[3], 'state', 'building', 'revision', '0')
return {'OK', ARGV[3]}
"""

# ARGV: prefix, fence, epoch, revision, ts, maxlen. Ends a rebuild: the snapshot marker.
FINISH = r"""
local p, fence = ARGV[1], tonumber(ARGV[2])
local meta = p .. ':meta'
local m = redis.call('HMGET', meta, 'fence', 'epoch', 'state')
if m[1] and tonumber(m[1]) > fence then return {'FENCED', m[1]} end
if m[2] ~= ARGV[3] or m[3] ~= 'building' then return {'EPOCH', m[2] or ''} end
redis.call('XADD', p .. ':log', 'MAXLEN', '~', ARGV[6], ARGV[4] .. '-1', 'prev', ARGV[4],
  'rev', ARGV[4], 'epoch', ARGV[3], 'ts', ARGV[5], 'ops', '[]', 'snapshot', '1')
redis.call('HSET', meta, 'state', 'ready', 'revision', ARGV[4], 'ts', ARGV[5])
return {'OK', ARGV[4]}
"""

# KEYS: keys to drop. ARGV: prefix, fence, epoch. Clears old keys during a rebuild, only
# while this publisher's rebuild is the one under way (a stale one cannot delete new data).
DROP = r"""
local p, fence = ARGV[1], tonumber(ARGV[2])
local m = redis.call('HMGET', p .. ':meta', 'fence', 'epoch', 'state')
if m[1] and tonumber(m[1]) > fence then return {'FENCED', m[1]} end
if m[2] ~= ARGV[3] or m[3] ~= 'building' then return {'EPOCH', m[2] or ''} end
for _, k in ipairs(KEYS) do
  if k ~= p .. ':meta' then redis.call('UNLINK', k) end
end
return {'OK', tostring(#KEYS)}
"""

# ARGV: prefix, fence. A new lease holder raises the fence in Redis before anything else, so
# that a publisher holding an older lease is refused from then on.
CLAIM = r"""
local p, fence = ARGV[1], tonumber(ARGV[2])
local f = redis.call('HGET', p .. ':meta', 'fence')
if f and tonumber(f) > fence then return {'FENCED', f} end
if redis.call('EXISTS', p .. ':meta') == 1 then
  redis.call('HSET', p .. ':meta', 'fence', ARGV[2])
end
return {'OK', ARGV[2]}
"""
