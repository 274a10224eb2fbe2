#!/usr/bin/env bash
# The gateway benchmark (README "Benchmark"; figures in docs/PERFORMANCE.md), in one run on
# this machine, against a Mosquitto it starts on a free port:
#
#   1. throughput: simulated JT/T 808 terminals -> vgate -> Mosquitto -> subscriber, beside the
#      same number of equivalent messages published straight to Mosquitto;
#   2. latency frame-in -> MQTT-out (the event's received_at to the subscriber) at half the
#      rate vgate reached in 1;
#   3. IDLE authenticated JT/T 808 connections on one vgate process: RSS per connection, and the
#      time for all of them to connect and log in at once (a reconnect storm).
#
# Usage: scripts/bench.sh            (defaults below; override with env N, VEHICLES, IDLE)
# Results: one JSON file per step in target/bench/, and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

VEHICLES=${VEHICLES:-200}      # simulated terminals for throughput/latency
DURATION=${DURATION:-10}       # seconds of driving
RATE=${RATE:-200}              # reports per second per terminal offered in step 1
IDLE=${IDLE:-15000}            # idle connections in step 3 (this machine: 20,000 fds per process)
STEPS=${STEPS:-"1 2 3"}        # which steps to run
OUT=target/bench
mkdir -p "$OUT"

cargo build --release -q -p gateway --bin vgate --example bench_mqtt
VGATE=target/release/vgate
BM=target/release/examples/bench_mqtt

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(open('$1'))$2)"; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

MQ=$(free_port)
cat >"$OUT/mosquitto.conf" <<EOF
listener $MQ 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
persistence false
EOF
mosquitto -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
PIDS+=($!)
sleep 0.5

start_vgate() { # $1 = name; prints "pid jt808_addr"
  local dir="$OUT/vgate-$1"; rm -rf "$dir"; mkdir -p "$dir"
  VGATE_MQTT_URL="mqtt://127.0.0.1:$MQ" VGATE_JT808_LISTEN=127.0.0.1:0 VGATE_GBT32960_LISTEN=off \
    VGATE_HTTP_LISTEN=off VGATE_DATA_DIR="$dir" VGATE_NODE_ID="bench-$1" VGATE_LOG=warn \
    "$VGATE" run >"$dir/stdout" 2>"$dir/stderr" &
  local pid=$!
  for _ in $(seq 100); do grep -q '^listening jt808' "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  echo "$pid $(awk '/^listening jt808/ {print $3}' "$dir/stdout")"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

step() { [[ " $STEPS " == *" $1 "* ]]; }

VIA=${VIA:-0}
if step 1; then
echo "== 1. throughput"
OFFERED=$((VEHICLES * RATE * DURATION))
"$BM" count --port "$MQ" --filter 'direct/#' --count "$OFFERED" --timeout 5 >"$OUT/direct.json" 2>/dev/null &
SUB=$!
sleep 0.5
"$BM" publish --port "$MQ" --count "$OFFERED" --size 430 --clients 4 >"$OUT/direct_pub.json"
wait "$SUB"

read -r VPID JT < <(start_vgate throughput)
PIDS+=("$VPID")
"$BM" count --port "$MQ" --filter 'vgate/v1/+/location' --count "$OFFERED" --timeout 5 >"$OUT/vgate.json" 2>/dev/null &
SUB=$!
sleep 0.5
"$VGATE" simulate --protocol jt808 --vehicles "$VEHICLES" --rate "$RATE" --duration "${DURATION}s" \
  --target "$JT" --json >"$OUT/sim_throughput.json"
wait "$SUB"
kill "$VPID"; wait "$VPID" 2>/dev/null || true

DIRECT=$(json "$OUT/direct.json" "['rate']")
VIA=$(json "$OUT/vgate.json" "['rate']")
echo "direct to Mosquitto: $DIRECT msg/s; via vgate: $VIA events/s ($(python3 -c "print(round(100*$VIA/max($DIRECT,1)))")%)"
fi

if step 2; then
[ "$VIA" = 0 ] && VIA=$((VEHICLES * RATE))
echo "== 2. latency at half that rate"
HALF=$(python3 -c "print(max(1, int($VIA / 2 / $VEHICLES)))")
read -r VPID JT < <(start_vgate latency)
PIDS+=("$VPID")
"$BM" count --port "$MQ" --filter 'vgate/v1/+/location' --count $((VEHICLES * HALF * DURATION)) --timeout 5 >"$OUT/latency.json" 2>/dev/null &
SUB=$!
sleep 0.5
"$VGATE" simulate --protocol jt808 --vehicles "$VEHICLES" --rate "$HALF" --duration "${DURATION}s" \
  --target "$JT" --json >"$OUT/sim_latency.json"
wait "$SUB"
kill "$VPID"; wait "$VPID" 2>/dev/null || true
echo "rate $((VEHICLES * HALF))/s: frame-in -> MQTT-out p50 $(json "$OUT/latency.json" "['latency_ms_p50']") ms, p99 $(json "$OUT/latency.json" "['latency_ms_p99']") ms; terminal ack p99 $(json "$OUT/sim_latency.json" "['latency_ms_p99']") ms"

fi

if step 3; then
echo "== 3. $IDLE idle connections"
read -r VPID JT < <(start_vgate idle)
PIDS+=("$VPID")
sleep 1
BASE=$(rss_kib "$VPID")
"$VGATE" simulate --protocol jt808 --vehicles "$IDLE" --rate 0 --heartbeat-s 600 --duration 20s \
  --local-addrs 127.0.0.2-127.0.0.5 --target "$JT" --json >"$OUT/sim_idle.json" &
SIM=$!
sleep 17
LOADED=$(rss_kib "$VPID")
wait "$SIM"
kill "$VPID"; wait "$VPID" 2>/dev/null || true
LOGINS=$(json "$OUT/sim_idle.json" "['logins']")
echo "logins $LOGINS/$IDLE, all in after $(json "$OUT/sim_idle.json" "['all_logged_in_s']") s; RSS $BASE KiB -> $LOADED KiB: $(python3 -c "print(round(($LOADED-$BASE)/max($LOGINS,1)*1024))") bytes per connection"
fi
