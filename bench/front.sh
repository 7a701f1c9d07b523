# The three TLS front doors of bench/tls.sh and bench/h2.sh (sourced; needs $work, $pids,
# $IDLE, $limit, $SERVER_CPU, bench/lib.sh): the Squadron gateway, nginx and HAProxy, each with
# one thread or worker on $SERVER_CPU, the same ECDSA P-256 certificate and the Mozilla
# intermediate protocols, before the same build/bin/hello. With FRONT_H2=1 all three offer h2
# by ALPN (Squadron does by default; nginx `listen ... http2`, HAProxy `alpn h2,http/1.1`).
# UPSTREAM_H2=1: the gateway (`protocol: h2c`) and HAProxy (`proto h2`) speak HTTP/2 to the
# upstream, which the SDK's server offers by prior knowledge; nginx cannot (proxy_pass is
# HTTP/1.x) and stays as it is. Sets PIDS, PORTS and servers.
upstream_protocol=http1 haproxy_proto=
if [ "${UPSTREAM_H2:-0}" = 1 ]; then upstream_protocol=h2c; haproxy_proto=" proto h2"; fi
FRONT_H2=${FRONT_H2:-0}
if [ "$FRONT_H2" = 1 ]; then nginx_h2=" http2"; haproxy_alpn="h2,http/1.1"; else nginx_h2=""; haproxy_alpn="http/1.1"; fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/site.key" -out "$work/site.pem" 2>/dev/null
cat "$work/site.pem" "$work/site.key" >"$work/site.combined.pem"  # HAProxy's form

HELLO_PORT=$(free_port); SQUADRON_PORT=$(free_port); HAPROXY_PORT=$(free_port); NGINX_PORT=$(free_port)

PORT=$HELLO_PORT taskset -c "$SERVER_CPU" build/bin/hello --threads 1 >"$work/hello.log" 2>&1 &
pids+=($!)
UPSTREAM_PID=$!  # its CPU per request is measured too: it shares $SERVER_CPU

cat >"$work/gateway.yaml" <<GW
listen: 127.0.0.1:$SQUADRON_PORT
tls: { cert: site.pem, key: site.key }
upstreams:
  hello:
    endpoints: [127.0.0.1:$HELLO_PORT]
    routes: [/hello]
    # Neither peer has a circuit breaker by default: no cap below the load (bench/h2.sh runs
    # 16 x 100 streams at once). The gateway's default max_connections (1,024 to an instance)
    # stays: past it requests wait in the gateway for a connection (SAME_LIMITS=1 below).
    proxy: { max_in_flight: 100000, protocol: $upstream_protocol }
GW
taskset -c "$SERVER_CPU" build/bin/squadron gateway -c "$work/gateway.yaml" --threads 1 --idle-timeout 300 \
  >"$work/squadron.log" 2>&1 &
squadron_pid=$!
pids+=("$squadron_pid")

# HAProxy and nginx with the same protocols (TLS 1.2 and 1.3) and the same intermediate ciphers;
# sessions resumed by tickets in all three (their defaults); no limit on requests per connection.
ciphers=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
# SAME_HEADERS=1: HAProxy and nginx add what the gateway adds to every request by default
# (X-Forwarded-For/-Proto/-Host and an X-Request-Id, which the upstream echoes), so that the
# upstream sharing their CPU parses the same request; off by default (their own defaults).
haproxy_headers= nginx_headers=
if [ "${SAME_HEADERS:-0}" = 1 ]; then
  haproxy_headers='  option forwardfor
  http-request set-header X-Forwarded-Proto https
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  unique-id-format %[uuid()]
  unique-id-header X-Request-Id'
  nginx_headers='      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-Id $request_id;'
fi
# SAME_LIMITS=1: HAProxy holds at most as many connections to the upstream as the gateway does
# by default, the rest of the requests waiting in its queue (`maxconn 1024` on the server line);
# off by default (HAProxy's own default: no limit).
haproxy_server_limit=
if [ "${SAME_LIMITS:-0}" = 1 ]; then haproxy_server_limit=" maxconn 1024"; fi
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn ${HAPROXY_MAXCONN:-$((IDLE + 200))}
  ulimit-n $limit
  pidfile $work/haproxy.pid
  ssl-default-bind-ciphers $ciphers
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 1s
  timeout client 300s
  timeout server 30s
  timeout http-keep-alive 300s
  http-reuse always
frontend front
  bind 127.0.0.1:$HAPROXY_PORT ssl crt $work/site.combined.pem alpn $haproxy_alpn
$haproxy_headers
  default_backend hello
backend hello
  server hello1 127.0.0.1:$HELLO_PORT$haproxy_proto$haproxy_server_limit
CFG
taskset -c "$SERVER_CPU" haproxy -f "$work/haproxy.cfg" -D >"$work/haproxy.log" 2>&1 ||
  { cat "$work/haproxy.log" >&2; exit 1; }

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile $limit;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $((limit - 100)); }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 10000000;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  upstream hello { server 127.0.0.1:$HELLO_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl$nginx_h2 backlog=4096;
    ssl_certificate $work/site.pem;
    ssl_certificate_key $work/site.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $ciphers;
    location / {
      proxy_pass http://hello;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
$nginx_headers
    }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)

wait_port "$HELLO_PORT"; wait_port "$SQUADRON_PORT"; wait_port "$HAPROXY_PORT"; wait_port "$NGINX_PORT"
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')
declare -A PIDS=([squadron]="$squadron_pid" [haproxy]="$(cat "$work/haproxy.pid")" [nginx]="$nginx_worker")
declare -A PORTS=([squadron]=$SQUADRON_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT)
servers="squadron nginx haproxy"
for s in $servers; do  # each answers over TLS before anything is measured
  curl -fsS --cacert "$work/site.pem" "https://localhost:${PORTS[$s]}/hello" >/dev/null ||
    { echo "$s does not answer over https" >&2; exit 1; }
done

