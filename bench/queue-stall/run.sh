#!/usr/bin/env bash
# Does miniflare's local queue stall without cann-quant? Starts `wrangler dev` on worker.ts,
# seeds CHAINS message chains (each handled message sends the next), and watches the log.
# A stall = no queue batch result logged for 180 s while messages are pending. Prints a line
# every 30 s and a verdict; exits 0 with "no stall" after MINUTES, 1 on a stall. Leave the
# project's files alone while it runs: wrangler dev reloads on a change (worker.ts, tsconfig
# files) and the reload drops the local queue, which looks like a stall (the log shows
# "Reloading local server").
#
#   [WRANGLER_ARGS=...] bash bench/queue-stall/run.sh [MINUTES=30] [PORT=8796] [SEED_QUERY=chains=100]
# SEED_QUERY: chains=N (messages in flight), mem=MB allocated per message (32), d1=0 to leave D1
# out or d1=read for one read-only statement instead of create/select/insert, r2=0 to leave R2 out,
# reuse=1 to allocate the buffer once and reuse it, tail=MS to wait MS after the last message
# before the handler returns, book=1 to run the D1 statements in a second queue's consumer of the
# same Worker instead, svc=1 to run them in another Worker over a service binding (needs
# WRANGLER_ARGS="-c bench/queue-stall/booker.toml"), keep=1 / keepinv=1 to keep the D1 prepared
# statements reachable forever / until the end of their message, keepdummy=1 to keep as many small
# plain objects instead. WRANGLER_ARGS: more `wrangler dev` flags, e.g.
# "--compatibility-flags queue_consumer_no_wait_for_wait_until".
set -euo pipefail
minutes=${1:-30}
port=${2:-8796}
query=${3:-chains=100}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=$(mktemp -d /tmp/queue-stall.XXXXXX)
log=$state/wrangler-dev.log
cd "$root"
# Its own inspector port, so that two of these can run side by side.
setsid npx wrangler dev --local --ip 127.0.0.1 --port "$port" --inspector-port $((port + 10000)) \
  --persist-to "$state" -c "$here/wrangler.toml" ${WRANGLER_ARGS:-} >"$log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  kill -0 $pid 2>/dev/null || { echo "wrangler dev exited:"; tail -5 "$log"; exit 2; }
  sleep 1
done
curl -sf -X POST "http://127.0.0.1:$port/seed?$query"
start=$(date +%s)
last_count=0
last_change=$start
while :; do
  sleep 30
  now=$(date +%s)
  count=$(grep -c 'QUEUE repro 1/1' "$log" || true)
  if [ "$count" != "$last_count" ]; then
    last_count=$count
    last_change=$now
  fi
  echo "$(date -u +%T) $(((now - start) / 60)) min: $count messages handled (log: $log)"
  if [ $((now - last_change)) -ge 180 ]; then
    echo "STALL: no batch result for $((now - last_change)) s after $count messages, $(((last_change - start) / 60)) min in"
    grep -E 'handled|QUEUE' "$log" | tail -4
    exit 1
  fi
  if [ $((now - start)) -ge $((minutes * 60)) ]; then
    echo "no stall: $count messages in $minutes min"
    exit 0
  fi
done
