-- sixpod edge data plane: Host -> app -> endpoint, from shared dicts the agent fills.
--
-- Two slots, a and b, each a pair of dicts: sixpod_hosts_X (host -> app) and sixpod_apps_X
-- (app -> entry text). sixpod_meta names the active slot and its generation. A full push
-- fills the inactive slot and commits by switching the slot, so a request sees the old
-- state or the new one, never a mix; deltas go to the active slot. Each dict of a slot
-- holds the generation under MARK: a reload that emptied one (a resize) shows as not intact.
--
-- Entry text: optional settings lines ("=body BYTES\n", "=redirect\n", "=hsts SECONDS\n"),
-- then one endpoint per line, "[v6] port weight\n" (normalised by the agent, so the hot
-- path does no string work).
--
-- sixpod_meta "epoch" grows with every admin batch, slot switch and ejection: a worker
-- keeps what it read from the tables (host -> app, decoded entries, whether anything is
-- ejected) for as long as the epoch it read them at is current, so a request in a steady
-- state reads one number from shared memory instead of a string per table.
--
-- TLS: sixpod_certs holds domain -> "VERSION\nKIND LEN1 LEN2..\nDER.." (the chain's DER
-- certificates, leaf first, then the key's DER: SEC1 for "ec", PKCS#1 for "rsa"); a worker
-- parses a domain once and keeps it in its LRU while the version is unchanged, and parses
-- an intermediate once for every domain it signs.
-- sixpod_acme holds ACME HTTP-01 token -> key authorization.
local balancer = require "ngx.balancer"
local ssl = require "ngx.ssl"
local lrucache = require "resty.lrucache"
local cjson = require "cjson.safe"
local ffi = require "ffi"
local base = require "resty.core.base"
require "resty.core.request"  -- declares ngx_http_lua_ffi_req_get_headers_count

local C = ffi.C
local get_request = base.get_request
local truncated = ffi.new("int[1]")

local _M = {}

local meta = ngx.shared.sixpod_meta
local eject = ngx.shared.sixpod_eject
local stats = ngx.shared.sixpod_stats
local certs = ngx.shared.sixpod_certs  -- nil without TLS
local acme = ngx.shared.sixpod_acme
local SLOTS = {
    a = {hosts = ngx.shared.sixpod_hosts_a, apps = ngx.shared.sixpod_apps_a},
    b = {hosts = ngx.shared.sixpod_hosts_b, apps = ngx.shared.sixpod_apps_b},
}
local MARK = "\1generation"
-- the certificate values this module reads (the agent checks it in /state before it pushes)
local CERT_FORMAT = "der1"

-- settings from nginx.conf (init_worker_by_lua); defaults match EdgeConfig's
local conf = {max_headers = 100, eject_after = 3, eject_for = 10, retry_ratio = 0.2,
              retry_burst = 10, pools = 1, tls = false, tls_cache = 20000}
local tls_cache  -- per worker: certificate domain -> {version, chain, key} (parsed)
local x509_cache  -- per worker: an intermediate's DER -> X509* (shared by the chains)

-- nginx's upstream keepalive cache is searched linearly for a connection to the peer, so
-- one cache for 10k endpoints finds nothing (or pays a long scan): nginx.conf has
-- conf.pools upstream blocks, each with its own small cache, and an endpoint always uses
-- the one its address hashes to (set in the access phase through $sixpod_pool)
local POOLS = {}

-- nginx finds a `proxy_pass $variable` upstream by walking every upstream block and
-- comparing names of the same length: the pools' names all differ in length
local function pool_name(i)
    return "sixpod_pool_" .. i .. ("_"):rep(i)
end

local cache = {}        -- per worker: app -> decoded entry (its .epoch: when last checked)
local cache_n = 0
local CACHE_MAX = 20000
local host_app = {}     -- per worker: host -> app, as read at host_epoch[host]
local host_epoch = {}
local hosts_n = 0
local HOSTS_MAX = 50000
local seen_epoch        -- the epoch this worker's view was read at
local seen_slot         -- the active slot then
local any_ejected = true  -- whether any endpoint was ejected then (true: look each one up)
local any_failing = true  -- whether any endpoint had failures in a row then
local inflight = {}     -- per worker: "addr port" -> outstanding requests

-- per-worker request counters and latency buckets, added to sixpod_stats every second (and
-- when the worker exits), so a request takes no lock on a shared dict for them
local counts = {}       -- app -> {[status class] = n}
local buckets = {}      -- upper bound text -> n
local latency_ms = 0
local FLUSH_EVERY = 1

local function flush()
    local c, b, l = counts, buckets, latency_ms
    counts, buckets, latency_ms = {}, {}, 0
    for app, classes in pairs(c) do
        for class, n in pairs(classes) do stats:incr("r\t" .. app .. "\t" .. class .. "xx", n, 0) end
    end
    for bound, n in pairs(b) do stats:incr("l\t" .. bound, n, 0) end
    if l > 0 then stats:incr("l\tsum_ms", l, 0) end
end


local monotonic_time = require("resty.core.time").monotonic_time
local worker_started = 0  -- when this worker began (the agent sees a reload take effect)
local worker_started_monotonic = 0  -- the same on the system's monotonic clock (no steps)

function _M.init_worker(settings)
    worker_started = ngx.now()
    worker_started_monotonic = monotonic_time()
    for k, v in pairs(settings or {}) do conf[k] = v end
    POOLS = {}
    for i = 0, conf.pools - 1 do POOLS[i + 1] = pool_name(i) end
    if certs then
        tls_cache = lrucache.new(conf.tls_cache)
        x509_cache = lrucache.new(1000)
    end
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
    ngx.timer.every(FLUSH_EVERY, flush)  -- also run (premature) as the worker exits
end

local function decode(raw)
    local peers, cum, total = {}, {}, 0
    local body, redirect, hsts
    for k, v in raw:gmatch("=(%a+) ?(%d*)\n") do
        if k == "body" then body = tonumber(v)
        elseif k == "redirect" then redirect = true
        elseif k == "hsts" then hsts = "max-age=" .. v end
    end
    for a, p, w in raw:gmatch("(%[[^%]]+%]) (%d+) (%d+)\n") do
        local weight = tonumber(w)
        total = total + weight
        local n = #peers + 1
        local key = a .. " " .. p
        peers[n] = {addr = a, port = tonumber(p), weight = weight, key = key,
                    xkey = "x " .. key, fkey = "f " .. key,
                    pool = POOLS[ngx.crc32_short(key) % #POOLS + 1]}
        cum[n] = total
    end
    -- active, retrying: this app's requests and retries in flight in this worker, for its
    -- retry budget (one app's failures cannot spend another's)
    return {raw = raw, peers = peers, cum = cum, total = total, body = body,
            redirect = redirect, hsts = hsts, active = 0, retrying = 0}
end

-- the active slot, and this worker's view of the tables, current as of now
local function view()
    local epoch = meta:get("epoch")
    if epoch ~= seen_epoch or not epoch then
        seen_epoch = epoch
        seen_slot = SLOTS[meta:get("slot") or ""]
        any_ejected = eject:get("ejected") ~= nil
        any_failing = eject:get("failing") ~= nil
    end
    return seen_slot, epoch
end

local function entry(apps, app, epoch)
    local c = cache[app]
    if c and c.epoch == epoch and epoch then return c end
    local raw = apps:get(app)
    if not raw then return nil end
    if c and c.raw == raw then
        c.epoch = epoch
        return c
    end
    if not c then
        cache_n = cache_n + 1
        if cache_n > CACHE_MAX then cache, cache_n = {}, 1 end
    end
    c = decode(raw)
    c.app = app
    c.epoch = epoch
    cache[app] = c
    return c
end

local function exact(hosts, host, epoch)
    if epoch and host_epoch[host] == epoch then return host_app[host] end
    local app = hosts:get(host)
    if app then
        if not host_epoch[host] then
            hosts_n = hosts_n + 1
            if hosts_n > HOSTS_MAX then host_app, host_epoch, hosts_n = {}, {}, 1 end
        end
        host_app[host], host_epoch[host] = app, epoch
    end
    return app
end

-- exact name, then wildcards from the longest suffix: a.b.example.com tries
-- *.b.example.com, then *.example.com (never a bare TLD)
local function app_for(hosts, host)
    local app = hosts:get(host)
    if app then return app end
    local rest = host
    while true do
        local dot = rest:find(".", 1, true)
        if not dot then return nil end
        rest = rest:sub(dot + 1)
        if not rest:find(".", 1, true) then return nil end
        app = hosts:get("*." .. rest)
        if app then return app end
    end
end

-- one endpoint by weight: binary search over the cumulative weights
local function pick(c)
    local cum = c.cum
    local r = math.random() * c.total
    local lo, hi = 1, #cum
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if cum[mid] < r then lo = mid + 1 else hi = mid end
    end
    return c.peers[lo]
end

local function usable(p, tried)
    return not (tried and tried[p.key]) and not (any_ejected and eject:get(p.xkey))
end

-- a weighted endpoint that is neither ejected nor already tried: a few draws (two dict
-- lookups in the common case), then a scan; with everything ejected, any untried one
local function candidate(c, tried)
    for _ = 1, 3 do
        local p = pick(c)
        if usable(p, tried) then return p end
    end
    local ok, total = {}, 0
    for i = 1, #c.peers do
        local p = c.peers[i]
        if usable(p, tried) then ok[#ok + 1] = p; total = total + p.weight end
    end
    if #ok == 0 then
        for i = 1, #c.peers do
            local p = c.peers[i]
            if not (tried and tried[p.key]) then ok[#ok + 1] = p; total = total + p.weight end
        end
    end
    if #ok == 0 then return pick(c) end
    local r = math.random() * total
    for i = 1, #ok do
        r = r - ok[i].weight
        if r <= 0 then return ok[i] end
    end
    return ok[#ok]
end

-- power of two choices on outstanding requests per unit of weight
local function choose(c, tried)
    local a = candidate(c, tried)
    if #c.peers == 1 then return a end
    local b = candidate(c, tried)
    if b ~= a and (inflight[b.key] or 0) * a.weight < (inflight[a.key] or 0) * b.weight then
        return b
    end
    return a
end

-- Hop-by-hop headers are dropped by nginx's proxy_set_header; a Connection token naming
-- one of these is ignored: a client must not strip the framing or the routing of its own
-- request on its way to the container.
local KEEP = {host = true, ["content-length"] = true, ["transfer-encoding"] = true,
              connection = true, upgrade = true, te = true, ["x-request-id"] = true}

local MAX_CONNECTION_TOKENS = 32
local LONG_LABEL = ("[^.]"):rep(64)

local function answer(status, text, extra)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    for k, v in pairs(extra or {}) do ngx.header[k] = v end
    ngx.say(text)
    return ngx.exit(status)
end

local function body_size()
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    if data then return #data end
    local path = ngx.req.get_body_file()
    if not path then return 0 end
    local f = io.open(path, "rb")
    if not f then return 0 end
    local n = f:seek("end")
    f:close()
    return n
end

-- a Host nginx accepted but no DNS name looks like (nginx already refuses "/", "\\", NUL
-- and bad dots): only names that miss the exact table are checked, as those are the only
-- ones a wildcard or a 404 sees
local function bad_host(host)
    if #host > 253 or host:find(LONG_LABEL) then return true end
    return not host:find("^[%w._-]+$") and not host:find("^%[[%x:.]+%]$")
end

local function header_count_over(max)
    C.ngx_http_lua_ffi_req_get_headers_count(get_request(), max, truncated)
    return truncated[0] ~= 0
end

local function cert_for(name)
    local v = certs:get(name)
    if v then return name, v end
    local dot = name:find(".", 1, true)
    if not dot or not name:find(".", dot + 1, true) then return nil end
    local wild = "*" .. name:sub(dot)
    return wild, certs:get(wild)
end

function _M.access(no_redirect)
    local slot, epoch = view()
    local host = ngx.var.host  -- nginx's: request line first, then Host; lower case, no port
    local app = slot and exact(slot.hosts, host, epoch)
    if not app then
        if bad_host(host) then
            return answer(400, "sixpod: bad Host (a DNS name of at most 253 characters)")
        end
        app = slot and app_for(slot.hosts, host)
        if not app then return answer(404, "sixpod: no app serves this host") end
    end
    ngx.var.sixpod_app = app
    if header_count_over(conf.max_headers) then
        return answer(431, "sixpod: more than " .. conf.max_headers .. " header fields")
    end
    local c = entry(slot.apps, app, epoch)
    if c and (c.redirect or c.hsts) then
        if ngx.var.https ~= "on" then
            -- only to an HTTPS this node can serve: never a redirect into a refused handshake
            if c.redirect and not no_redirect and certs and select(2, cert_for(host)) then
                return ngx.redirect("https://" .. host .. ngx.var.request_uri, 308)
            end
        elseif c.hsts then
            ngx.var.sixpod_hsts = c.hsts
        end
    end
    if not c or #c.peers == 0 then
        return answer(503, "sixpod: app " .. app .. " has no healthy endpoint",
                      {["Retry-After"] = "5"})
    end
    if c.body then
        local declared = tonumber(ngx.var.http_content_length or "")
        if (declared and declared > c.body)
                or (not declared and ngx.var.http_transfer_encoding and body_size() > c.body) then
            return answer(413, "sixpod: body over this app's limit of " .. c.body .. " bytes")
        end
    end
    local conn = ngx.var.http_connection
    if conn then
        local n, upgrade = 0, false
        for token in conn:gmatch("[^,%s]+") do
            n = n + 1
            if n > MAX_CONNECTION_TOKENS then
                return answer(400, "sixpod: too many Connection options")
            end
            token = token:lower()
            if token == "upgrade" then upgrade = true end
            if not KEEP[token] then ngx.req.clear_header(token) end
        end
        -- an upgrade passes only as a websocket the client asked for in Connection:
        -- never an h2c tunnel past the edge's forwarded headers
        local up = ngx.var.http_upgrade
        if upgrade and up and up:lower() == "websocket" then ngx.var.sixpod_upgrade = up end
    end
    c.active = c.active + 1
    local ctx = ngx.ctx
    ctx.peers = c
    -- the first endpoint is chosen here: its keepalive pool is the upstream block
    local first = choose(c, nil)
    ctx.first = first
    ngx.var.sixpod_pool = first.pool
end

-- a connect failure or timeout: eject after eject_after in a row, for eject_for seconds
-- with jitter, unless that would leave more than half of the app's endpoints ejected
-- (so never the last one)
-- (one worker at a time decides for an app, so two cannot both take the last free half; a
-- worker that finds the app's decision taken leaves the count for the next failure)
local function failed(p, c)
    local n = eject:incr(p.fkey, 1, 0, conf.eject_for)
    if n == 1 then
        -- "failing" outlives every failure count (each lives eject_for from its first
        -- failure), set whole as "ejected" is; the epoch makes every worker look again
        eject:set("failing", true, conf.eject_for)
        meta:incr("epoch", 1, 0)
        -- and this worker at once: a request it began before now may succeed before it
        -- takes a new one (which would read the epoch), and that success is a reset
        any_failing = true
    end
    if not n or n < conf.eject_after then return end
    local lock = "d " .. c.app
    if not eject:add(lock, true, 1) then return end
    local out = 0
    for i = 1, #c.peers do
        if eject:get(c.peers[i].xkey) then out = out + 1 end
    end
    if (out + 1) * 2 <= #c.peers then
        eject:set(p.xkey, true, conf.eject_for * (0.8 + 0.4 * math.random()))
        eject:delete(p.fkey)
        eject:incr("ejections", 1, 0)
        -- "ejected" outlives every ejection (its TTL is the longest an ejection can have:
        -- reading the TTL and setting a shorter one raced with another worker's longer
        -- ejection, whose endpoint then got requests once "ejected" expired); the epoch
        -- makes every worker look again
        eject:set("ejected", true, conf.eject_for * 1.2)
        meta:incr("epoch", 1, 0)
        any_ejected = true
    end
    eject:delete(lock)
end

-- what nginx does not pass to another endpoint once the request was sent to one
-- (proxy_next_upstream's non_idempotent off: ngx_http_upstream_next's own list)
local NON_IDEMPOTENT = {POST = true, LOCK = true, PATCH = true}

-- whether nginx would have tried another endpoint after this single attempt's 502/503/504
-- had a retry been offered: any method before the request was sent (a connect failure:
-- no connect time), an idempotent one after
local function would_retry()
    return not NON_IDEMPOTENT[ngx.req.get_method()]
        or tonumber(ngx.var.upstream_connect_time) == nil
end

local NGX_BUSY = -3  -- "no live upstreams": nginx answers 502 (an error code here gives 500)

-- Envoy's retry budget, per app and worker: retries in flight stay under retry_ratio of
-- the app's active requests, or retry_burst, whichever is more
local function may_retry(c)
    return c.retrying < math.max(conf.retry_burst, conf.retry_ratio * c.active)
end

-- ctx.attempts: the endpoints tried, in order, once a second attempt is asked for (a
-- request with one attempt tried only ctx.current)
function _M.balancer()
    local ctx = ngx.ctx
    local c = ctx.peers
    local p = ctx.first
    if p then
        ctx.first = nil
        -- a retry is offered only while the budget has room: with none, nginx passes the
        -- endpoint's own 502/503/504 on rather than a 502 of its own
        if #c.peers > 1 then
            if may_retry(c) then balancer.set_more_tries(1) else ctx.no_retry = true end
        end
    else
        local cur = ctx.current
        inflight[cur.key] = (inflight[cur.key] or 1) - 1
        ctx.current = nil
        local attempts = ctx.attempts or {cur}
        ctx.attempts = attempts
        if not may_retry(c) then
            eject:incr("retries_refused", 1, 0)
            return ngx.exit(NGX_BUSY)
        end
        c.retrying = c.retrying + 1
        ctx.retried = true
        eject:incr("retries", 1, 0)
        local tried = {}
        for i = 1, #attempts do tried[attempts[i].key] = true end
        p = choose(c, tried)
        attempts[#attempts + 1] = p
    end
    local ok, err = balancer.set_current_peer(p.addr, p.port)
    if not ok then
        ngx.log(ngx.ERR, "sixpod: set_current_peer ", p.addr, " ", p.port, ": ", err)
        return ngx.exit(NGX_BUSY)
    end
    ctx.current = p
    ctx.sent = ngx.now()  -- nginx's own clock for $upstream_response_time (cached, ms)
    inflight[p.key] = (inflight[p.key] or 0) + 1
end

-- upper bounds (seconds) of the upstream latency histogram, as the agent exports it
local BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
local BUCKET_TEXT = {}
for i = 1, #BUCKETS do BUCKET_TEXT[i] = tostring(BUCKETS[i]) end

local function observe(t)
    local b = "+Inf"
    for i = 1, #BUCKETS do
        if t <= BUCKETS[i] then b = BUCKET_TEXT[i]; break end
    end
    buckets[b] = (buckets[b] or 0) + 1
    latency_ms = latency_ms + math.floor(t * 1000 + 0.5)
end

local function each(text)
    local out = {}
    for v in (text or ""):gmatch("[^,%s]+") do out[#out + 1] = v end
    return out
end

-- an attempt's verdict: a 502/504 with no byte from the endpoint is nginx's own (connect
-- failure, timeout); one the app sent itself, or no status at all (the client went away
-- first), says nothing about the endpoint's health
local function verdict(p, c, st, got)
    if (st == 502 or st == 504) and got == 0 then
        failed(p, c)
    elseif st and any_failing and eject:get(p.fkey) then
        eject:delete(p.fkey)
    end
end

function _M.log()
    local ctx = ngx.ctx
    local c = ctx.peers
    local status = ngx.status
    local app = c and c.app or ngx.var.sixpod_app
    local class = math.floor(status / 100)
    local per_app = counts[app]
    if not per_app then per_app = {}; counts[app] = per_app end
    per_app[class] = (per_app[class] or 0) + 1
    if not c then return end
    c.active = c.active - 1
    local cur = ctx.current
    if cur then inflight[cur.key] = (inflight[cur.key] or 1) - 1 end
    local attempts = ctx.attempts
    if not attempts then
        if not cur then return end
        -- one attempt: the answer is the endpoint's unless nginx made a 502/504 itself or
        -- the client left first (499: nothing known about the endpoint)
        if status == 502 or status == 504 then
            local t = tonumber(ngx.var.upstream_response_time)
            if t then observe(t) end
            local st = tonumber(ngx.var.upstream_status)
            local got = tonumber(ngx.var.upstream_bytes_received)
            if st == 502 or st == 504 then
                verdict(cur, c, st, got)
            else
                verdict(cur, c, st, nil)
            end
            if ctx.no_retry and would_retry() then
                eject:incr("retries_refused", 1, 0)
            end
        elseif status == 503 then
            observe(ngx.now() - ctx.sent)
            verdict(cur, c, status, nil)
            if ctx.no_retry and would_retry() then
                eject:incr("retries_refused", 1, 0)
            end
        else
            observe(ngx.now() - ctx.sent)  -- every attempt, a client that left first too
            if status ~= 499 then verdict(cur, c, status, nil) end
        end
        return
    end
    if ctx.retried then c.retrying = c.retrying - 1 end
    -- one value per attempt ("502, 200" after a retry); one more if the budget refused one
    local statuses, received = each(ngx.var.upstream_status), each(ngx.var.upstream_bytes_received)
    local times = each(ngx.var.upstream_response_time)
    for i = 1, #attempts do
        local t = tonumber(times[i] or "")
        if t then observe(t) end
        verdict(attempts[i], c, tonumber(statuses[i] or ""), tonumber(received[i] or ""))
    end
end

-- TLS: the certificate of the SNI name, exact first, then the wildcard one label up (never
-- *.tld); no name, a name that is not a hostname ("*.x", ".x", "a..x"), or no certificate:
-- the handshake is refused (a TLS alert, and nothing about the node's other domains shown)
local function refuse(why)
    eject:incr("tls_refused", 1, 0)
    ngx.log(ngx.INFO, "sixpod: TLS handshake refused: ", why)
    return ngx.exit(ngx.ERROR)
end


-- the SNI name as the certificate table keys it, or nil and why not
local function sni_name(name)
    if not name or name == "" then return nil, "no server name (SNI)" end
    name = name:lower()
    if name:byte(-1) == 46 then name = name:sub(1, -2) end  -- a trailing dot
    if #name > 253 or not name:find("^[%w][%w%-%.]*$") or name:find("..", 1, true) then
        return nil, "not a hostname"
    end
    return name
end

-- before anything else, also before a session is resumed (OpenSSL then skips the
-- certificate phase): a name the node holds no certificate for is refused, so a deleted
-- certificate stops at once and no session resumes under a name a full handshake refuses
local clienthello = require "ngx.ssl.clienthello"

function _M.client_hello()
    local name, why = sni_name(clienthello.get_client_hello_server_name())
    if not name then return refuse(why) end
    if not select(2, cert_for(name)) then return refuse("no certificate for " .. name) end
end

-- OpenSSL's own typed DER decoders (the PEM and generic key decoders of OpenSSL 3.0 try
-- every format: 25 times slower for an EC key); void * keeps clear of others' typedefs
ffi.cdef [[
void *d2i_X509(void **a, const unsigned char **pp, long length);
void X509_free(void *a);
int X509_up_ref(void *a);
void *OPENSSL_sk_new_null(void);
int OPENSSL_sk_push(void *st, const void *data);
void *d2i_ECPrivateKey(void **a, const unsigned char **pp, long length);
void EC_KEY_free(void *k);
const void *EC_KEY_get0_group(const void *key);
int EC_GROUP_get_curve_name(const void *group);
void *d2i_RSAPrivateKey(void **a, const unsigned char **pp, long length);
void RSA_free(void *k);
void *EVP_PKEY_new(void);
int EVP_PKEY_assign(void *pkey, int type, void *key);
void ERR_clear_error(void);
]]
local KEYS = {
    ec = {decode = C.d2i_ECPrivateKey, free = C.EC_KEY_free, type = 408},  -- EVP_PKEY_EC
    rsa = {decode = C.d2i_RSAPrivateKey, free = C.RSA_free, type = 6},  -- EVP_PKEY_RSA
}
local EC_CURVES = {[415] = true, [715] = true}  -- P-256, P-384: what uploads may use
local der_at = ffi.new("const unsigned char *[1]")

-- the key kind and certificate lengths of a header line ("ec 512 498"), and the bytes they
-- cover; nil and why when it is not one this module wrote
local function cert_header(header)
    local kind, rest = header:match("^(%l+)(.*)$")
    if not kind or not KEYS[kind] then return nil, "unknown key kind in " .. header:sub(1, 20) end
    local lengths, total = {}, 0
    for token in rest:gmatch("[^ ]+") do
        if not token:find("^[1-9]%d?%d?%d?%d?$") then
            return nil, "certificate length " .. token:sub(1, 12) .. " is not a number"
        end
        lengths[#lengths + 1] = tonumber(token)
        total = total + lengths[#lengths]
    end
    if #lengths == 0 then return nil, "no certificate lengths" end
    if rest ~= " " .. table.concat(lengths, " ") then return nil, "a malformed header" end
    return kind, lengths, total
end

-- a stored value's header line (nl, nl2: its newlines) and DER, checked as far as needed
-- to tell a value this module wrote: known kind, lengths within it, DER that starts as one
local function cert_shape(v, nl, nl2)
    local kind, lengths, total = cert_header(v:sub(nl + 1, nl2 - 1))
    if not kind then return nil, lengths end
    if total >= #v - nl2 then return nil, "certificate lengths past the end (no key)" end
    if v:byte(nl2 + 1) ~= 0x30 then return nil, "not DER" end
    return kind, lengths
end

-- an X509 from the len bytes at offset at of p, all of them, or nil
local function d2i_x509(p, at, len)
    der_at[0] = p + at
    local x = C.d2i_X509(nil, der_at, len)
    if x ~= nil and der_at[0] ~= p + at + len then
        C.X509_free(x)
        return nil
    end
    return x ~= nil and x or nil
end

local function pem_value(v, nl, nl2)  -- the value a sixpod before DER stored: PEM
    local len = tonumber(v:sub(nl + 1, nl2 - 1))
    local chain, err = ssl.parse_pem_cert(v:sub(nl2 + 1, nl2 + len))
    if not chain then return nil, err end
    local pkey
    pkey, err = ssl.parse_pem_priv_key(v:sub(nl2 + len + 1))
    if not pkey then return nil, err end
    return chain, pkey
end

-- the chain (a STACK_OF(X509) as ngx.ssl.set_cert takes it) and key of a stored value
-- (its header line runs from nl to nl2), or nil and why
local function parse_cert(v, nl, nl2)
    if v:sub(nl + 1, nl2 - 1):find("^%d+$") then return pem_value(v, nl, nl2) end
    local kind, lengths = cert_shape(v, nl, nl2)
    if not kind then return nil, lengths end
    local k = KEYS[kind]
    local st = C.OPENSSL_sk_new_null()
    if st == nil then return nil, "out of memory" end
    st = ffi.gc(st, C.ngx_http_lua_ffi_free_cert)
    local p = ffi.cast("const unsigned char *", v)
    local at = nl2  -- the DER starts after the header's newline (0-based nl2)
    for n, len in ipairs(lengths) do
        local x
        if n == 1 then  -- the leaf: the stack owns it
            x = d2i_x509(p, at, len)
            if not x then return nil, "the leaf is not DER X.509" end
        else
            local der = v:sub(at + 1, at + len)
            local shared = x509_cache:get(der)
            if not shared then
                shared = d2i_x509(p, at, len)
                if not shared then return nil, "certificate " .. n .. " is not DER X.509" end
                shared = ffi.gc(shared, C.X509_free)
                x509_cache:set(der, shared)
            end
            C.X509_up_ref(shared)
            x = shared
        end
        if C.OPENSSL_sk_push(st, x) == 0 then
            C.X509_free(x)
            return nil, "out of memory"
        end
        at = at + len
    end
    der_at[0] = p + at
    local raw = k.decode(nil, der_at, #v - at)
    if raw == nil or der_at[0] ~= p + #v then
        if raw ~= nil then k.free(raw) end
        return nil, "the key is not a DER " .. kind .. " key"
    end
    if kind == "ec" and not EC_CURVES[C.EC_GROUP_get_curve_name(C.EC_KEY_get0_group(raw))] then
        k.free(raw)
        return nil, "the key's curve is not P-256 or P-384"
    end
    local pkey = C.EVP_PKEY_new()
    if pkey == nil or C.EVP_PKEY_assign(pkey, k.type, raw) ~= 1 then
        k.free(raw)
        if pkey ~= nil then C.ngx_http_lua_ffi_free_priv_key(pkey) end
        return nil, "out of memory"
    end
    return st, ffi.gc(pkey, C.ngx_http_lua_ffi_free_priv_key)
end

-- a stored certificate that cannot be served: said once per worker and version (the
-- handshakes that meet it are refused, and counted); OpenSSL's queued errors go with it
local function unusable(key, version, why)
    C.ERR_clear_error()
    eject:incr("tls_parse_errors", 1, 0)
    tls_cache:set(key, {version = version, err = why})
    ngx.log(ngx.ERR, "sixpod: the certificate of ", key, " cannot be served: ", why)
    return refuse("the certificate of " .. key .. " cannot be served: " .. why)
end

function _M.certificate()
    local name, why = sni_name(ssl.server_name())
    if not name then return refuse(why) end
    local key, v = cert_for(name)
    if not v then return refuse("no certificate for " .. name) end
    local nl = v:find("\n", 1, true)
    local nl2 = nl and v:find("\n", nl + 1, true)
    if not nl2 then return unusable(key, "", "the stored value is malformed") end
    local version = v:sub(1, nl - 1)
    local c = tls_cache:get(key)
    if not c or c.version ~= version then
        local chain, pkey = parse_cert(v, nl, nl2)
        if not chain then return unusable(key, version, tostring(pkey)) end
        c = {version = version, chain = chain, key = pkey}
        tls_cache:set(key, c)
    end
    if c.err then return refuse("the certificate of " .. key .. " cannot be served: " .. c.err) end
    local ok, err = ssl.clear_certs()
    if ok then ok, err = ssl.set_cert(c.chain) end
    if ok then ok, err = ssl.set_priv_key(c.key) end
    if not ok then return unusable(key, version, "OpenSSL refuses it: " .. tostring(err)) end
end

-- ACME HTTP-01: /.well-known/acme-challenge/TOKEN that this pod published is answered for
-- any Host; any other token is routed to the app (it may run its own ACME client), never
-- redirected to HTTPS
function _M.challenge()
    local token = ngx.var.uri:match("^/%.well%-known/acme%-challenge/([%w_-]+)$")
    local v = token and acme:get(token)
    if not v then return _M.access(true) end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(v)
    return ngx.exit(200)
end

-- Admin API (unix socket only). POST /apply with a JSON batch:
--   {"generation": G, "begin": bool, "commit": bool, "revision": R,
--    "apps": {name: text|null}, "hosts": {host: app|null}}
-- "begin" empties the inactive slot and makes G its pending generation; batches of G then
-- fill it; "commit" switches requests to it. A batch for the active generation is a delta
-- to the active slot. Adds apply apps before hosts, removals hosts before apps, so no
-- request sees a host pointing at an app that is not there. A value that does not fit
-- leaves the old one in place (none in a slot being filled); the rest of the batch applies
-- and the answer is 507 naming what was not stored.
-- TLS, in any batch of the active or pending generation: "certs": {domain: value|null},
-- "challenges": {token: key authorization|null}, "certs_mark": M (the agent loaded every
-- certificate: health may pass). GET /tls: {mark, certs: {domain: fingerprint},
-- challenges: {token: value}}, for the agent to send only what differs.

local function intact(slot, gen)
    local s = SLOTS[slot or ""]
    return s ~= nil and gen ~= nil and s.hosts:get(MARK) == gen and s.apps:get(MARK) == gen
end

local function state()
    local slot, gen = meta:get("slot"), meta:get("generation")
    local s = SLOTS[slot or "a"]
    return {
        generation = gen or "",
        revision = meta:get("revision") or -1,
        slot = slot or "",
        ready = intact(slot, gen),
        pending = meta:get("pending") or "",
        hosts_free = s.hosts:free_space(),
        apps_free = s.apps:free_space(),
        ejections = eject:get("ejections") or 0,
        retries = eject:get("retries") or 0,
        retries_refused = eject:get("retries_refused") or 0,
        tls = certs ~= nil,
        certs_mark = certs and certs:get(MARK) or "",
        cert_format = CERT_FORMAT,
        certs_free = certs and certs:free_space() or 0,
        tls_refused = eject:get("tls_refused") or 0,
        tls_parse_errors = eject:get("tls_parse_errors") or 0,
        worker_started = worker_started,
        worker_started_monotonic = worker_started_monotonic,
        connections = tonumber(ngx.var.connections_active) or 0,
        connections_reading = tonumber(ngx.var.connections_reading) or 0,
        connections_writing = tonumber(ngx.var.connections_writing) or 0,
        connections_waiting = tonumber(ngx.var.connections_waiting) or 0,
    }
end

local function reply(status, t)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(t))
    return ngx.exit(status)
end

local function put(dict, key, value, failed_keys)
    local old = dict:get(key)
    if old == value then return end
    local ok = dict:safe_set(key, value)
    if not ok then
        if old ~= nil then dict:safe_set(key, old) end
        failed_keys[#failed_keys + 1] = key
    end
end

-- a certificate as the batch carries it ("VERSION\nHEADER\nBASE64") as sixpod_certs
-- holds it (the body decoded), or nil and why
local function stored_cert(v)
    local version, header, body = v:match("^([^\n]+)\n([^\n]+)\n(.*)$")
    if not version then return nil, "not VERSION, header and base64 lines" end
    local der = ngx.decode_base64(body)
    if not der or #der == 0 then return nil, "its body is not base64" end
    local stored = version .. "\n" .. header .. "\n" .. der
    local kind, why = cert_shape(stored, #version + 1, #version + #header + 2)
    if not kind then return nil, why end
    return stored
end

-- nil, or a JSON object of names to text or null
local function names_to_text(t)
    if t == nil then return true end
    if type(t) ~= "table" then return false end
    for k, v in pairs(t) do
        if type(k) ~= "string" or (type(v) ~= "string" and v ~= cjson.null) then return false end
    end
    return true
end

local function apply(batch)
    local gen = batch.generation
    if type(gen) ~= "string" or gen == "" then
        return reply(400, {error = "batch without a generation"})
    end
    -- refused whole, before anything changes: a batch that stopped half-way would leave
    -- tables that the workers' views (kept while the epoch stands) do not show
    for _, part in ipairs({"apps", "hosts", "certs", "challenges"}) do
        if not names_to_text(batch[part]) then
            return reply(400, {error = part .. " is not an object of names to text or null"})
        end
    end
    if (batch.certs ~= nil or batch.certs_mark ~= nil) and not certs then
        return reply(400, {error = "TLS is off on this node"})
    end
    local cert_values = {}
    for domain, v in pairs(batch.certs or {}) do
        local why
        if v == cjson.null then
            cert_values[domain] = v
        else
            cert_values[domain], why = stored_cert(v)
        end
        if not cert_values[domain] then
            return reply(400, {error = "certs: the value of " .. domain .. ": " .. why})
        end
    end
    if batch.begin then
        local s = meta:get("slot") == "a" and "b" or "a"
        SLOTS[s].hosts:flush_all()
        SLOTS[s].hosts:flush_expired()
        SLOTS[s].apps:flush_all()
        SLOTS[s].apps:flush_expired()
        -- the mark goes in first: a reload that empties this slot mid-push is seen
        SLOTS[s].hosts:safe_set(MARK, gen)
        SLOTS[s].apps:safe_set(MARK, gen)
        meta:set("pending", gen)
        meta:set("pending_slot", s)
    end
    local slot
    if gen == meta:get("pending") then
        slot = meta:get("pending_slot")
    elseif gen == meta:get("generation") and not batch.commit then
        slot = meta:get("slot")
    end
    if not SLOTS[slot or ""] then
        return reply(409, {error = "generation mismatch", generation = meta:get("generation")})
    end
    local d = SLOTS[slot]
    if d.hosts:get(MARK) ~= gen or d.apps:get(MARK) ~= gen then
        return reply(409, {error = "the slot lost its tables (a reload emptied it)"})
    end
    local bad = {}
    for name, text in pairs(batch.apps or {}) do
        if text ~= cjson.null then put(d.apps, name, text, bad) end
    end
    for host, app in pairs(batch.hosts or {}) do
        if app == cjson.null then d.hosts:delete(host) else put(d.hosts, host, app, bad) end
    end
    for name, text in pairs(batch.apps or {}) do
        if text == cjson.null then
            d.apps:delete(name)
            -- its request counters go with it (no series for apps long gone)
            for class = 1, 5 do stats:delete("r\t" .. name .. "\t" .. class .. "xx") end
        end
    end
    local bad_certs, bad_tokens = {}, {}
    if batch.certs ~= nil or batch.certs_mark ~= nil then
        for domain, v in pairs(cert_values) do
            if v == cjson.null then certs:delete(domain) else put(certs, domain, v, bad_certs) end
        end
        if batch.certs_mark then certs:safe_set(MARK, batch.certs_mark) end
    end
    for token, v in pairs(batch.challenges or {}) do
        if v == cjson.null then acme:delete(token) else put(acme, token, v, bad_tokens) end
    end
    if batch.commit then
        meta:set("slot", slot)
        meta:set("generation", gen)
        meta:delete("pending")
        meta:delete("pending_slot")
    end
    if batch.revision then meta:set("revision", batch.revision) end
    meta:incr("epoch", 1, 0)  -- workers read the tables again
    if #bad + #bad_certs + #bad_tokens > 0 then  -- the rest of the batch is applied
        local st = state()
        st.error = "shared dict full"
        st.not_stored, st.certs_not_stored, st.challenges_not_stored = bad, bad_certs, bad_tokens
        return reply(507, st)
    end
    return reply(200, state())
end

function _M.admin()
    local uri = ngx.var.uri
    if uri == "/state" or uri == "/status" then return reply(200, state()) end
    if uri == "/tls" then
        local out = {mark = certs and certs:get(MARK) or "", certs = {}, challenges = {}}
        for _, k in ipairs(certs and certs:get_keys(0) or {}) do
            local v = k ~= MARK and certs:get(k)
            local nl = v and v:find("\n", 1, true)
            local nl2 = nl and v:find("\n", nl + 1, true)
            -- a value in another format (stored by an older module) is not listed: re-pushed
            if nl2 and cert_shape(v, nl, nl2) then out.certs[k] = v:sub(1, nl - 1) end
        end
        for _, k in ipairs(acme:get_keys(0)) do out.challenges[k] = acme:get(k) end
        return reply(200, out)
    end
    if uri == "/stats" then
        local out = {}
        for _, k in ipairs(stats:get_keys(0)) do out[k] = stats:get(k) end
        return reply(200, out)
    end
    if uri ~= "/apply" or ngx.req.get_method() ~= "POST" then
        return reply(404, {error = "no such admin call"})
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    local batch = body and cjson.decode(body)
    if type(batch) ~= "table" then
        return reply(400, {error = "body is not a JSON batch"})
    end
    return apply(batch)
end

function _M.health()
    if intact(meta:get("slot"), meta:get("generation")) and (not certs or certs:get(MARK)) then
        ngx.say("ok")
    else
        ngx.status = 503
        ngx.say("no tenant state loaded")
        return ngx.exit(503)
    end
end

return _M
