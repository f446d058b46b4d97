-- sixpod edge data plane: Host -> app -> endpoint, from shared dicts the agent fills.
-- Shared dicts: sixpod_hosts (host -> app), sixpod_apps (app -> endpoint list text),
-- sixpod_meta (generation, revision, ready), sixpod_eject (passive health).
-- Endpoint list text, one endpoint per line: "[v6]" SP port SP weight (agent-normalised).
local balancer = require "ngx.balancer"
local cjson = require "cjson.safe"

local _M = {}

local hosts = ngx.shared.sixpod_hosts
local apps = ngx.shared.sixpod_apps
local meta = ngx.shared.sixpod_meta
local eject = ngx.shared.sixpod_eject
local stats = ngx.shared.sixpod_stats

local cache = {}        -- per worker: app -> {raw = text, peers = {...}, total = weight}
local cache_n = 0
local CACHE_MAX = 20000
local inflight = {}     -- per worker: "addr port" -> outstanding requests
local budget = 10.0     -- retry tokens: each request adds RETRY_RATIO, a retry costs 1

local EJECT_AFTER = 3
local EJECT_FOR = 10
local RETRY_RATIO = 0.2
local BUDGET_MAX = 10.0

function _M.init_worker()
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
end

local function decode(raw)
    local peers, total = {}, 0
    for a, p, w in raw:gmatch("(%S+) (%d+) (%d+)\n") do
        local weight = tonumber(w)
        peers[#peers + 1] = {addr = a, port = tonumber(p), weight = weight, key = a .. " " .. p}
        total = total + weight
    end
    return {raw = raw, peers = peers, total = total}
end

local function peers_of(app)
    local raw = apps:get(app)
    if not raw then return nil end
    local c = cache[app]
    if c and c.raw == raw then return c end
    if not c then
        cache_n = cache_n + 1
        if cache_n > CACHE_MAX then cache, cache_n = {}, 1 end
    end
    c = decode(raw)
    cache[app] = c
    return c
end

-- Host header text -> lookup key: lower case, port and trailing dot removed.
local function host_key(h)
    if not h then return nil end
    h = h:lower()
    if h:sub(1, 1) == "[" then return h:match("^(%[[^%]]+%])") end
    h = h:gsub(":%d*$", "")
    return (h:gsub("%.$", ""))
end

local function app_for(host)
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

local function weighted_pick(peers, total, skip)
    local r = math.random() * total
    for i = 1, #peers do
        local p = peers[i]
        if not skip[p.key] then
            r = r - p.weight
            if r <= 0 then return p end
        end
    end
    for i = #peers, 1, -1 do
        if not skip[peers[i].key] then return peers[i] end
    end
end

-- Power of two choices on outstanding requests per unit of weight; ejected and tried
-- endpoints are skipped unless nothing else is left.
local function choose(c, tried)
    local skip, left, total = {}, 0, 0
    for i = 1, #c.peers do
        local p = c.peers[i]
        if tried[p.key] or eject:get("x " .. p.key) then
            skip[p.key] = true
        else
            left = left + 1
            total = total + p.weight
        end
    end
    if left == 0 then
        skip, total = {}, c.total
        for k in pairs(tried) do skip[k] = true end
        for i = 1, #c.peers do if not skip[c.peers[i].key] then left = left + 1 end end
        if left == 0 then skip = {} end
        total = 0
        for i = 1, #c.peers do if not skip[c.peers[i].key] then total = total + c.peers[i].weight end end
    end
    local a = weighted_pick(c.peers, total, skip)
    local b = weighted_pick(c.peers, total, skip)
    if a and b and a ~= b then
        local la = (inflight[a.key] or 0) / a.weight
        local lb = (inflight[b.key] or 0) / b.weight
        if lb < la then return b end
    end
    return a
end

local HOP = {connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
             te = true, trailer = true, ["transfer-encoding"] = true, upgrade = true}

function _M.access()
    local host = host_key(ngx.var.http_host)
    local app = host and host ~= "" and app_for(host)
    if not app then
        ngx.var.sixpod_app = "-"
        ngx.status = 404
        ngx.header["Content-Type"] = "text/plain"
        ngx.say("sixpod: no app serves this host")
        return ngx.exit(404)
    end
    ngx.var.sixpod_app = app
    local c = peers_of(app)
    if not c or #c.peers == 0 then
        ngx.status = 503
        ngx.header["Retry-After"] = "5"
        ngx.header["Content-Type"] = "text/plain"
        ngx.say("sixpod: app ", app, " has no healthy endpoint")
        return ngx.exit(503)
    end
    local conn = ngx.var.http_connection
    if conn then
        for token in conn:gmatch("[^,%s]+") do
            token = token:lower()
            if not HOP[token] then ngx.req.clear_header(token) end
        end
    end
    if not ngx.var.http_x_request_id then
        ngx.req.set_header("X-Request-Id", ngx.var.request_id)
    end
    budget = math.min(BUDGET_MAX, budget + RETRY_RATIO)
    local ctx = ngx.ctx
    ctx.peers = c
    ctx.tried = {}
end

local function failed(key)
    local n = eject:incr("f " .. key, 1, 0, EJECT_FOR)
    if n and n >= EJECT_AFTER then
        eject:set("x " .. key, true, EJECT_FOR * (0.8 + 0.4 * math.random()))
        eject:delete("f " .. key)
        eject:incr("ejections", 1, 0)
    end
end

function _M.balancer()
    local ctx = ngx.ctx
    local c = ctx.peers
    if ctx.current then
        local state = balancer.get_last_failure()
        inflight[ctx.current.key] = (inflight[ctx.current.key] or 1) - 1
        if state == "failed" then failed(ctx.current.key) end
        if budget < 1 then
            ctx.current = nil
            eject:incr("retries_refused", 1, 0)
            return ngx.exit(502)
        end
        budget = budget - 1
        eject:incr("retries", 1, 0)
    end
    local p = choose(c, ctx.tried)
    ctx.tried[p.key] = true
    ctx.current = p
    inflight[p.key] = (inflight[p.key] or 0) + 1
    local ok, err = balancer.set_current_peer(p.addr, p.port)
    if not ok then
        ngx.log(ngx.ERR, "sixpod: set_current_peer ", p.addr, " ", p.port, ": ", err)
        return ngx.exit(500)
    end
    if not ctx.retry_set then
        ctx.retry_set = true
        if #c.peers > 1 then balancer.set_more_tries(1) end
    end
end

-- upper bounds (seconds) of the upstream latency histogram, as the agent exports it
local BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

function _M.log()
    local class = math.floor(ngx.status / 100) .. "xx"
    stats:incr("r\t" .. (ngx.var.sixpod_app or "-") .. "\t" .. class, 1, 0)
    local p = ngx.ctx.current
    if not p then return end
    local t = tonumber(ngx.var.upstream_response_time)
    if t then
        local b = "+Inf"
        for i = 1, #BUCKETS do
            if t <= BUCKETS[i] then b = tostring(BUCKETS[i]); break end
        end
        stats:incr("l\t" .. b, 1, 0)
        stats:incr("l\tsum_ms", math.floor(t * 1000 + 0.5), 0)
    end
    inflight[p.key] = (inflight[p.key] or 1) - 1
    local us = ngx.var.upstream_status
    local st = us and tonumber(us:match("(%d+)$") or "")
    if st == nil or st == 502 or st == 504 then
        failed(p.key)
    else
        eject:delete("f " .. p.key)
    end
end

-- Admin API (unix socket only): POST /apply with a JSON batch
-- {"generation": G, "revision": R, "full": bool, "apps": {name: text|null},
--  "hosts": {host: app|null}, "ready": bool}
-- Adds apply apps before hosts, removals hosts before apps, so no request sees a host
-- pointing at an app that is not there.
function _M.admin_state()
        ngx.header["Content-Type"] = "application/json"
        ngx.say(cjson.encode({
            generation = meta:get("generation") or "",
            revision = meta:get("revision") or -1,
            ready = meta:get("ready") or false,
            hosts_free = hosts:free_space(),
            apps_free = apps:free_space(),
            ejections = eject:get("ejections") or 0,
            retries = eject:get("retries") or 0,
            retries_refused = eject:get("retries_refused") or 0,
        }))
end

function _M.admin()
    local uri = ngx.var.uri
    if uri == "/state" then return _M.admin_state() end
    if uri == "/stats" then
        local out = {}
        for _, k in ipairs(stats:get_keys(0)) do out[k] = stats:get(k) end
        ngx.header["Content-Type"] = "application/json"
        ngx.say(cjson.encode(out))
        return
    end
    if uri ~= "/apply" or ngx.req.get_method() ~= "POST" then
        return ngx.exit(404)
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    local batch = body and cjson.decode(body)
    if type(batch) ~= "table" then
        ngx.status = 400
        ngx.say("bad batch")
        return ngx.exit(400)
    end
    if batch.full_start then
        meta:set("generation", batch.generation)
        meta:set("ready", false)
        hosts:flush_all()
        apps:flush_all()
    elseif meta:get("generation") ~= batch.generation then
        ngx.status = 409
        ngx.say("generation mismatch")
        return ngx.exit(409)
    end
    local errors = 0
    for name, text in pairs(batch.apps or {}) do
        if text ~= cjson.null then
            local ok = apps:safe_set(name, text)
            if not ok then errors = errors + 1 end
        end
    end
    for host, app in pairs(batch.hosts or {}) do
        if app == cjson.null then
            hosts:delete(host)
        else
            local ok = hosts:safe_set(host, app)
            if not ok then errors = errors + 1 end
        end
    end
    for name, text in pairs(batch.apps or {}) do
        if text == cjson.null then apps:delete(name) end
    end
    if batch.revision then meta:set("revision", batch.revision) end
    if batch.ready ~= nil then meta:set("ready", batch.ready) end
    if errors > 0 then
        ngx.status = 507
        ngx.say("shared dict full: ", errors, " entries not stored")
        return ngx.exit(507)
    end
    ngx.say("ok")
end

function _M.health()
    if meta:get("ready") then
        ngx.say("ok")
    else
        ngx.status = 503
        ngx.say("no tenant state loaded")
        return ngx.exit(503)
    end
end

return _M
