#!/usr/bin/env bash
# Proves what the Docker image runs, without a Docker engine: the compiled dist/ on the image's
# Node major (fetched through the npm registry), against the embedded PostgreSQL:
#   first start initialises and becomes ready; SIGINT shuts down cleanly with no orphaned
#   postgres; a second start reuses the data; production on unsafe settings refuses to start.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MAJOR=$(sed -n 's/^ARG NODE_IMAGE=node:\([0-9]*\).*/\1/p' Dockerfile)
[ -n "$NODE_MAJOR" ] || { echo "cannot read the Node version from the Dockerfile"; exit 1; }
NODE_BIN=$(npx -y -p "node@${NODE_MAJOR}" -c 'command -v node')
echo "image Node: $("$NODE_BIN" --version) ($NODE_BIN)"

work=$(mktemp -d)
chmod 755 "$work" # as root, the postgres user must pass through to DATA_DIR
trap 'rm -rf "$work"' EXIT
free_port() { "$NODE_BIN" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
PORT=$(free_port)
PG_PORT=$(free_port)

run_once() { # $1 = label; starts, waits for /readyz, sends SIGINT, checks exit and orphans
  local label=$1 log="$work/$1.log" t0 pid code
  t0=$(date +%s%N)
  DATA_DIR="$work/data" PORT=$PORT EMBEDDED_PG_PORT=$PG_PORT NODE_ENV=development \
    "$NODE_BIN" dist/src/server.js >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "$label: server exited"; cat "$log"; exit 1; fi
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "$label: /readyz never answered 200"; cat "$log"; exit 1; }
  echo "$label: ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  curl -sf "http://127.0.0.1:$PORT/p/demo" | grep -q 'DEMO' || { echo "$label: demo practice page missing"; exit 1; }
  kill -INT "$pid"
  code=0; wait "$pid" || code=$?
  [ "$code" -eq 0 ] || { echo "$label: exit code $code after SIGINT"; cat "$log"; exit 1; }
  grep -q 'shut down cleanly' "$log" || { echo "$label: no clean shutdown"; cat "$log"; exit 1; }
  if pgrep -f "postgres -D $work/data" >/dev/null; then echo "$label: orphaned postgres"; exit 1; fi
  echo "$label: clean shutdown, no orphaned postgres"
}

run_once first
grep -q 'initialising embedded PostgreSQL' "$work/first.log" || { echo "first start did not initialise"; exit 1; }
[ "$(stat -c %a "$work/data/demo-owner.txt")" = 600 ] || { echo "demo owner file missing or readable by others"; exit 1; }
grep -q 'Password:' "$work/first.log" || { echo "demo owner credentials were not printed on first start"; exit 1; }
run_once second
grep -q 'reusing embedded PostgreSQL data' "$work/second.log" || { echo "second start did not reuse the data"; exit 1; }
grep -q 'migrations current' "$work/second.log" || { echo "second start re-ran migrations"; exit 1; }
if grep -q 'Password:' "$work/second.log"; then echo "demo owner credentials printed again on the second start"; exit 1; fi

code=0
NODE_ENV=production "$NODE_BIN" dist/src/server.js >"$work/prod.log" 2>&1 || code=$?
[ "$code" -eq 1 ] && grep -q 'DATABASE_URL:' "$work/prod.log" || { echo "production on unsafe settings did not refuse clearly"; cat "$work/prod.log"; exit 1; }
echo "production with unsafe settings: refused (exit 1) naming the settings"
echo "smoke: ok"
