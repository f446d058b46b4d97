"""The edge's nginx.conf, generated once from ``edge.yaml``; tenant changes never touch it.

One ``listen`` per VIP (and only those), port 80 and, with ``tls``, 443 (HTTP/2 by ALPN),
so nothing else on the node serves HTTP; the health and status server on its own address;
the admin API on a unix socket inside the agent's 0700 directory (nginx makes the socket
itself 0666). TLS files the agent keeps in ``RUN/tls`` (0700): the session ticket keys it
rotates and a placeholder certificate nginx insists on and never sends (every handshake gets
its certificate from ``ssl_certificate_by_lua``, or is refused).
"""

from __future__ import annotations

from sixpod import addr
from sixpod.edge.config import EdgeConfig

ADMIN_SOCKET = "admin/admin.sock"
TLS_DIR = "tls"
TICKET_KEYS = 3
"""Session ticket key files: the first encrypts new tickets, all decrypt."""
PLACEHOLDER = ("placeholder.crt", "placeholder.key")
# Mozilla's "intermediate" TLS 1.2 ciphers (TLS 1.3's own suites are all fine)
CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
POOLS = 256
"""Upstream blocks, each with its own keepalive cache, that endpoints are hashed over:
nginx searches a cache linearly (one cache for thousands of endpoints reuses nothing, and
64 caches of 256 cost 7% of a worker at 10,000 endpoints, 256 of 64 cost 2%), and finds the
block by walking every block's name, compared first by length (so 256 names of 256 lengths
cost one string compare)."""
POOL_KEEPALIVE = 64

_LOG_FORMAT = (
    '{"time":"$time_iso8601","client":"$remote_addr","host":"$host","app":"$sixpod_app",'
    '"method":"$request_method","uri":"$request_uri","status":$status,'
    '"bytes":$bytes_sent,"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
    '"request_time":$request_time,"upstream_time":"$upstream_response_time",'
    '"request_id":"$sixpod_request_id","tls":"$ssl_protocol",'
    '"tls_resumed":"$ssl_session_reused","http":"$server_protocol","worker":$pid}'
)


def _listen(e: addr.Endpoint, extra: str = "") -> str:
    if e.ip.version == 6:
        extra += " ipv6only=on"
    return f"        listen {addr.for_nginx(e)}{extra};\n"


def _lua_settings(cfg: EdgeConfig) -> str:
    tls = f"true, tls_cache = {cfg.tls.worker_cache}" if cfg.tls else "false"
    return (
        f"{{max_headers = {cfg.max_headers}, eject_after = {cfg.eject_after}, "
        f"eject_for = {cfg.eject_for:g}, retry_ratio = {cfg.retry_ratio:g}, "
        f"retry_burst = {cfg.retry_burst}, pools = {POOLS}, tls = {tls}}}"
    )


def _tls(cfg: EdgeConfig) -> str:
    if cfg.tls is None:
        return ""
    d = f"{cfg.run_dir}/{TLS_DIR}"
    keys = "".join(
        f"        ssl_session_ticket_key {d}/ticket.{i}.key;\n" for i in range(TICKET_KEYS)
    )
    return f"""\
        ssl_certificate {d}/{PLACEHOLDER[0]};  # never sent: see ssl_certificate_by_lua
        ssl_certificate_key {d}/{PLACEHOLDER[1]};
        # the SNI policy first, also for a resumed session (no certificate phase then)
        ssl_client_hello_by_lua_block {{ require("sixpod_edge").client_hello() }}
        ssl_certificate_by_lua_block {{ require("sixpod_edge").certificate() }}
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {CIPHERS};
        ssl_prefer_server_ciphers off;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_session_cache shared:sixpod_tls:32m;
        ssl_session_timeout {int(cfg.tls.ticket_rotate * (TICKET_KEYS - 1))}s;
        ssl_session_tickets on;
{keys}        add_header Strict-Transport-Security $sixpod_hsts always;
"""


def pool_name(n: int) -> str:
    """Upstream block ``n``'s name; the names differ in length, so nginx finds the one a
    ``proxy_pass $variable`` names by comparing lengths (the Lua's ``pool_name``)."""
    return f"sixpod_pool_{n}" + "_" * n


def _pool(n: int) -> str:
    return f"""\
    upstream {pool_name(n)} {{
        server 0.0.0.1:1;  # placeholder: the Lua balancer chooses every peer
        balancer_by_lua_block {{ require("sixpod_edge").balancer() }}
        keepalive {POOL_KEEPALIVE};
        keepalive_requests 10000;
        keepalive_timeout 60s;
    }}
"""


def _proxy(cfg: EdgeConfig) -> str:
    return f"""\
            log_by_lua_block {{ require("sixpod_edge").log() }}
            proxy_pass http://$sixpod_pool;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Connection $sixpod_connection;
            proxy_set_header Upgrade $sixpod_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $sixpod_request_id;
            proxy_set_header Forwarded "for=$sixpod_forwarded_for;host=\\"$host\\";proto=$scheme";
            proxy_set_header Proxy-Connection "";
            proxy_set_header Keep-Alive "";
            proxy_connect_timeout {cfg.connect_timeout:g}s;
            proxy_read_timeout {cfg.upstream_timeout:g}s;
            proxy_send_timeout {cfg.upstream_timeout:g}s;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 2;
"""


def nginx_conf(cfg: EdgeConfig) -> str:
    run = cfg.run_dir
    pools = "".join(_pool(n) for n in range(POOLS))
    listens = "".join(_listen(e) for e in cfg.listen)
    tls = _tls(cfg)
    proxy = _proxy(cfg)
    if cfg.tls is not None:
        listens += "".join(_listen(e, " ssl http2") for e in cfg.tls.listen)
    certs_dict = f"    lua_shared_dict sixpod_certs {cfg.tls.certs_dict};\n" if cfg.tls else ""
    return f"""\
# nginx for the edge of node {cfg.node}. Generated by `sixpod render`; do not edit.
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes {cfg.workers};
# a reload (nginx.conf changed, ticket keys rotated) closes what old workers still hold
worker_shutdown_timeout {cfg.drain_timeout:g}s;
pid {run}/nginx.pid;
error_log {cfg.error_log} warn;
daemon off;
master_process on;

events {{
    worker_connections 16384;
}}

http {{
    lua_package_path "{cfg.lua_dir}/?.lua;;";
    # two slots of tenant tables: a full push fills the inactive one, then switches
    lua_shared_dict sixpod_hosts_a {cfg.hosts_dict};
    lua_shared_dict sixpod_hosts_b {cfg.hosts_dict};
    lua_shared_dict sixpod_apps_a {cfg.apps_dict};
    lua_shared_dict sixpod_apps_b {cfg.apps_dict};
    lua_shared_dict sixpod_meta 1m;
    lua_shared_dict sixpod_eject 16m;
    lua_shared_dict sixpod_stats 32m;
    lua_shared_dict sixpod_acme 8m;
{certs_dict}    init_worker_by_lua_block {{
        require("sixpod_edge").init_worker({_lua_settings(cfg)})
    }}

    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    log_format sixpod_json escape=json '{_LOG_FORMAT}';
    access_log {cfg.access_log} sixpod_json;
    server_tokens off;

    # hardening: header limits, slow clients, body size, connections per client
    client_header_buffer_size 4k;
    large_client_header_buffers 8 16k;
    client_header_timeout 10s;
    client_body_timeout 30s;
    send_timeout 30s;
    keepalive_timeout 60s;
    keepalive_requests 10000;
    client_max_body_size {cfg.body_limit};
    ignore_invalid_headers on;
    underscores_in_headers off;
    limit_conn_zone $sixpod_client zone=sixpod_per_client:16m;
    limit_conn_status 429;
    limit_conn_log_level warn;

    map $sixpod_upgrade $sixpod_connection {{
        default upgrade;
        "" "";
    }}
    # the per-client connection limit's key: an IPv6 client's /64 (one subscriber or
    # container host), an IPv4 client's address
    map $binary_remote_addr $sixpod_client {{
        "~^(?s)(?<sixpod_net>.{{8}}).{{8}}$" $sixpod_net;
        default $binary_remote_addr;
    }}
    map $http_x_request_id $sixpod_request_id {{
        "" $request_id;
        default $http_x_request_id;
    }}
    map $remote_addr $sixpod_forwarded_for {{
        "~:" "\\"[$remote_addr]\\"";
        default $remote_addr;
    }}

    # keepalive pools: an endpoint's address picks its block ($sixpod_pool)
{pools}
    server {{
{listens}        server_name _;
        limit_conn sixpod_per_client {cfg.conn_per_client};
        set $sixpod_app "-";
        set $sixpod_pool {pool_name(0)};
        set $sixpod_upgrade "";  # "websocket" only when the client asked for it properly
        set $sixpod_hsts "";  # the app's Strict-Transport-Security, on HTTPS only
{tls}        # nginx answers an unknown Transfer-Encoding with 501: a malformed request is a 400
        error_page 501 =400 @sixpod_bad_request;
        location @sixpod_bad_request {{ return 400 "sixpod: bad request\n"; }}
        # an ACME challenge this pod published is answered here; any other token is the
        # app's own (it runs its own ACME client): routed like the rest, never redirected
        location ^~ /.well-known/acme-challenge/ {{
            access_by_lua_block {{ require("sixpod_edge").challenge() }}
{proxy}        }}
        location / {{
            access_by_lua_block {{ require("sixpod_edge").access() }}
{proxy}        }}
    }}

    server {{
        listen {addr.for_nginx(cfg.health)};
        access_log off;
        location = /healthz {{ content_by_lua_block {{ require("sixpod_edge").health() }} }}
        location = /status {{ content_by_lua_block {{ require("sixpod_edge").admin() }} }}
        location / {{ return 404; }}
    }}

    server {{
        listen unix:{run}/{ADMIN_SOCKET};
        access_log off;
        client_max_body_size 64m;
        client_body_buffer_size 64m;
        location / {{ content_by_lua_block {{ require("sixpod_edge").admin() }} }}
    }}
}}
"""
