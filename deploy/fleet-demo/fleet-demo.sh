#!/usr/bin/env bash
# A fleet on one machine: one redis-server, two simulated inference servers,
# three spillwayd replicas sharing them, and nginx round-robin in front —
# the fleet features (one limit, backends divided, a config followed by
# every replica) visible in the console and spillctl without a cluster.
#
#   deploy/fleet-demo/fleet-demo.sh [BUILD_DIR]     (make fleet-demo)
#
# Ports: nginx on $FRONT_PORT (default 8090); Redis, the simulators and the
# replicas on free loopback ports. Everything lives in a temporary folder
# and stops on Ctrl-C (or when this script is killed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build/release}" && pwd)
spillwayd=$build/app/spillwayd
spillctl=$build/app/spillctl
front_port=${FRONT_PORT:-8090}
for tool in redis-server nginx; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "fleet-demo: $tool is not installed (make deps)" >&2; exit 1; }
done
[ -x "$spillwayd" ] || { echo "fleet-demo: no $spillwayd (make apps)" >&2; exit 1; }

dir=$(mktemp -d /tmp/spillway-fleet-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The first "listening on ...:PORT" a process prints to its log.
port_of() {
  for _ in $(seq 100); do
    p=$(grep -o 'listening on [^ ]*' "$1" 2>/dev/null | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  echo "fleet-demo: nothing listening, see $1:" >&2; cat "$1" >&2; exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)

sims=()
for i in 1 2; do
  "$spillwayd" sim --listen 127.0.0.1:0 --threads 1 --model demo --max-num-seqs 8 --max-waiting 8 \
    --log-level warn >"$dir/sim$i.log" 2>&1 &
  pids+=($!)
  sims+=("$(port_of "$dir/sim$i.log")")
done

# One operator token for the three control planes, so spillctl and the
# console reach every replica with the same file.
token=$dir/control.token
python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$token"
chmod 600 "$token"
sed -e "s/@REDIS_PORT@/$redis_port/g" -e "s/@SIM1_PORT@/${sims[0]}/" -e "s/@SIM2_PORT@/${sims[1]}/" \
  -e "s|@TOKEN_FILE@|$token|" "$here/spillway.yaml" >"$dir/spillway.yaml"

fronts=() controls=()
for i in 1 2 3; do
  control=$(free_port)
  mkdir -p "$dir/replica$i"
  POD_NAME=replica$i "$spillwayd" --config "$dir/spillway.yaml" --control-listen "127.0.0.1:$control" \
    --data-dir "$dir/replica$i" >"$dir/replica$i.log" 2>&1 &
  pids+=($!)
  fronts+=("$(port_of "$dir/replica$i.log")")
  controls+=("$control")
done

cat >"$dir/nginx.conf" <<CONF
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/nginx-body;
  proxy_temp_path $dir/nginx-proxy;
  upstream spillway { $(for p in "${fronts[@]}"; do printf 'server 127.0.0.1:%s; ' "$p"; done) keepalive 64; }
  server {
    listen 127.0.0.1:$front_port;
    location / {
      proxy_pass http://spillway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir" &
pids+=($!)

cat <<TEXT

Spillway fleet demo: 3 replicas, 1 Redis (127.0.0.1:$redis_port), 2 simulated backends
  front (nginx, round robin):  http://127.0.0.1:$front_port
  replicas:                     $(for i in 0 1 2; do printf 'replica%s http://127.0.0.1:%s (control 127.0.0.1:%s)  ' $((i+1)) "${fronts[$i]}" "${controls[$i]}"; done)

  try:      curl -s http://127.0.0.1:$front_port/v1/chat/completions -H 'Content-Type: application/json' \\
              -d '{"model":"demo","messages":[{"role":"user","content":"Hello!"}]}'
  replicas: $spillctl --addr 127.0.0.1:${controls[0]} --token-file $token fleet
  console:  $build/app/spillway --connect 127.0.0.1:${controls[0]} --token-file $token
  apply on one, see it on all:
            $spillctl --addr 127.0.0.1:${controls[0]} --token-file $token config get > /tmp/fleet.yaml
            (edit /tmp/fleet.yaml) then
            $spillctl --addr 127.0.0.1:${controls[0]} --token-file $token config apply /tmp/fleet.yaml
            $spillctl --addr 127.0.0.1:${controls[2]} --token-file $token fleet
  logs:     $dir/*.log

Ctrl-C stops everything.
TEXT
wait -n "${pids[@]}" || true
echo "fleet-demo: a process exited; stopping (logs were in $dir)" >&2
