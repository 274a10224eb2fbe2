#!/usr/bin/env bash
# 100,000 JT/T 808 vehicles on this box (issue 17's benchmark; figures in docs/PERFORMANCE.md,
# "100,000 vehicles on one box"). Release build. Three phases:
#
#   1. NODES vgate processes (default 6) share one JT/T 808 port with `reuse_port = true` (the
#      kernel spreads the connections over them; one process is capped at 20,000 open files
#      here), all on one external Mosquitto this script starts on a free port. VEHICLES
#      vehicles (default 100,000) connect and log in at once, from SOURCES loopback source
#      addresses (one address gives ~28,000 ephemeral ports), simulated by SIM_PROCS
#      processes: VEHICLES - REPORTING of them idle (heartbeat every 60 s), REPORTING (default
#      10,000) reporting their position every second. Measured: the time until every vehicle
#      has logged in (target: 30 s), connections per node, RSS per connection, the CPU of
#      every process over a HOLD-second steady window, the reporting vehicles' acks and ack
#      latency (report -> 0x8001, which vgate sends once the event is at the broker).
#   2. Commands on ONE process (without the cluster mode, every node would take every
#      command): one vgate with ONE_NODE vehicles (default 16,667, one node's share of
#      phase 1), COMMANDS (default 10,000) commands published at once, one QoS 1 message each,
#      to as many distinct vehicles picked at random among them; rate and latency (publish ->
#      `acked` result) p50/p99.
#   3. (hook, not run by default) commands to COMMANDS random vehicles of all VEHICLES across
#      the NODES processes: needs the cluster mode (shared subscription + per-node inbox +
#      Redis, issue 17). Set CLUSTER_TOML to a file with the nodes' `[cluster]` section (a
#      Redis URL...) and it is appended to every node's configuration, then phase 3 runs
#      after phase 1 on the same nodes.
#
# Usage: scripts/bench-100k.sh   (env: VEHICLES NODES REPORTING SOURCES SIM_PROCS HOLD ONE_NODE
#                                 COMMANDS PHASES CLUSTER_TOML OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

VEHICLES=${VEHICLES:-100000}
NODES=${NODES:-6}
REPORTING=${REPORTING:-10000}
SOURCES=${SOURCES:-127.0.0.2-127.0.0.13}
SIM_PROCS=${SIM_PROCS:-6}          # processes of the idle simulator (the reporting one is one more)
HOLD=${HOLD:-30}                   # seconds of the steady window after the logins
RAMP=${RAMP:-20}                   # seconds over which the vehicles connect (0: all at once)
ONE_NODE=${ONE_NODE:-16667}
COMMANDS=${COMMANDS:-10000}
PHASES=${PHASES:-"1 2"}
OUT=${OUT:-target/bench-100k}
mkdir -p "$OUT"

cargo build --release -q -p gateway --bin vgate --example bench_mqtt
BIN=${CARGO_TARGET_DIR:-target}/release
VGATE=${VGATE_BIN:-$BIN/vgate}
BM=$BIN/examples/bench_mqtt

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

source scripts/bench-lib.sh
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
phase() { [[ " $PHASES " == *" $1 "* ]]; }

# Starts node $1 on the shared port $PORT; sets NODE_PID.
start_node() {
  local dir="$OUT/node-$1"; rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/vgate.toml" <<TOML
[jt808]
listen = "127.0.0.1:$PORT"
reuse_port = true
TOML
  [ -n "${CLUSTER_TOML:-}" ] && cat "$CLUSTER_TOML" >>"$dir/vgate.toml"
  VGATE_MQTT_URL="mqtt://127.0.0.1:$MQ" VGATE_GBT32960_LISTEN=off VGATE_HTTP_LISTEN=off \
    VGATE_DATA_DIR="$dir" VGATE_NODE_ID="n$1" VGATE_LOG=warn \
    "$VGATE" run --config "$dir/vgate.toml" >"$dir/stdout" 2>"$dir/stderr" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
}

wait_listening() {
  for _ in $(seq 150); do grep -q '^listening jt808' "$1/stdout" 2>/dev/null && return 0; sleep 0.1; done
  echo "vgate did not start; $1/stderr:" >&2; cat "$1/stderr" >&2; exit 1
}

if phase 1; then
rm -f "$OUT/mosquitto.log"
start_broker
PORT=$(free_port)
NODE_PIDS=()
for n in $(seq "$NODES"); do start_node "$n"; NODE_PIDS+=("$NODE_PID"); done
for n in $(seq "$NODES"); do wait_listening "$OUT/node-$n"; done
sleep 1
BASE=0; FD0=0
for p in "${NODE_PIDS[@]}"; do BASE=$((BASE + $(rss_kib "$p"))); FD0=$((FD0 + $(fds "$p"))); done
IDLE=$((VEHICLES - REPORTING))
echo "== 1. $VEHICLES vehicles on $NODES vgate processes sharing 127.0.0.1:$PORT (reuse_port), Mosquitto :$MQ; load $(loadavg)"
echo "   $IDLE idle (heartbeat 60 s) from $SIM_PROCS simulator processes, $REPORTING reporting every second; connecting over $RAMP s"
rate_of() { python3 -c "print(0 if $RAMP == 0 else $1 / $RAMP)"; }
# With phase 3 the vehicles stay connected long enough for the cluster's commands too.
EXTRA=0
if [ -n "${CLUSTER_TOML:-}" ] && phase 3; then EXTRA=120; fi
C0=(); for p in "${NODE_PIDS[@]}" "$MOSQ"; do C0+=("$(cpu_s "$p")"); done
T0=$(date +%s.%N)
# Both groups connect over RAMP seconds (--connect-rate), then stay: the steady window
# begins once every vehicle is connected (at most RAMP + 15 s), 3 s later, and lasts HOLD s;
# the reporting group stops 5 s after it, the idle one later still.
"$VGATE" simulate --protocol jt808 --vehicles "$IDLE" --rate 0 --heartbeat-s 60 \
  --connect-rate "$(rate_of "$IDLE")" \
  --duration "$((HOLD + 30 + EXTRA))s" --first-id 13000000000 --processes "$SIM_PROCS" \
  --source-ip "$SOURCES" --target "127.0.0.1:$PORT" --json >"$OUT/sim_idle.json" 2>"$OUT/sim_idle.err" &
SIM_IDLE=$!
PIDS+=("$SIM_IDLE")
"$VGATE" simulate --protocol jt808 --vehicles "$REPORTING" --rate 1 --heartbeat-s 60 \
  --connect-rate "$(rate_of "$REPORTING")" \
  --duration "$((HOLD + 23 + EXTRA))s" --first-id 13500000000 --first-index "$IDLE" \
  --source-ip "$SOURCES" --target "127.0.0.1:$PORT" --json >"$OUT/sim_report.json" 2>"$OUT/sim_report.err" &
SIM_REP=$!
PIDS+=("$SIM_REP")
# Connections per node every second until every vehicle is connected (or RAMP + 15 s).
: >"$OUT/connections.txt"
for t in $(seq $((RAMP + 15))); do
  sleep 1
  line="$t"; total=0
  for p in "${NODE_PIDS[@]}"; do f=$(fds "$p"); line="$line $f"; total=$((total + f)); done
  echo "$line" >>"$OUT/connections.txt"
  [ "$total" -ge $((VEHICLES + FD0)) ] && break
done
sleep 3 # the last logins settle
# The steady window: RSS, then CPU of every process over HOLD seconds.
W=$HOLD
RSS=0; PER_NODE=""
for p in "${NODE_PIDS[@]}"; do r=$(rss_kib "$p"); RSS=$((RSS + r)); PER_NODE="$PER_NODE $r"; done
CONNS=""; for p in "${NODE_PIDS[@]}"; do CONNS="$CONNS $(($(fds "$p") - FD0 / NODES))"; done
S0=$(date +%s.%N)
W0=(); for p in "${NODE_PIDS[@]}" "$MOSQ"; do W0+=("$(cpu_s "$p")"); done
SIMLIST="$SIM_IDLE $SIM_REP $(pgrep -P "$SIM_IDLE" | tr '\n' ' ')"
sims() { echo "$SIMLIST"; }
SIMS0=0; for p in $(sims); do SIMS0=$(python3 -c "print($SIMS0 + $(cpu_s "$p"))"); done
LOAD_W=$(loadavg)
sleep "$W"
W1=(); for p in "${NODE_PIDS[@]}" "$MOSQ"; do W1+=("$(cpu_s "$p")"); done
SIMS1=0; for p in $(sims); do SIMS1=$(python3 -c "print($SIMS1 + $(cpu_s "$p"))"); done
S1=$(date +%s.%N)
RSS_END=0; for p in "${NODE_PIDS[@]}"; do RSS_END=$((RSS_END + $(rss_kib "$p"))); done
# Phase 3 (cluster mode): while every vehicle is still connected, before the simulators end.
if [ "$EXTRA" -gt 0 ]; then
  echo "== 3. (cluster) $COMMANDS commands to random vehicles of all $VEHICLES across the nodes"
  python3 -c "import random; [print(f'{13000000000 + i:012d}' if i < $IDLE else f'{13500000000 + i - $IDLE:012d}') for i in random.sample(range($VEHICLES), $COMMANDS)]" >"$OUT/cluster_ids.txt"
  "$BM" commands --port "$MQ" --count "$COMMANDS" --ids-file "$OUT/cluster_ids.txt" \
    --status acked --timeout 60 >"$OUT/cluster_commands.json" || true
  cat "$OUT/cluster_commands.json"
fi
wait "$SIM_REP" || true
wait "$SIM_IDLE" || true
C1=(); for p in "${NODE_PIDS[@]}" "$MOSQ"; do C1+=("$(cpu_s "$p")"); done
python3 - "$OUT" "$VEHICLES" "$NODES" "$BASE" "$RSS" "$RSS_END" "$PER_NODE" "$CONNS" \
  "${C0[*]}" "${C1[*]}" "${W0[*]}" "${W1[*]}" "$S0" "$S1" "$SIMS0" "$SIMS1" "$LOAD_W" "$(loadavg)" <<'PY'
import json, sys
out, vehicles, nodes, base, rss, rss_end, per_node, conns = sys.argv[1:9]
c0, c1, w0, w1 = (list(map(float, a.split())) for a in sys.argv[9:13])
s0, s1, sims0, sims1 = map(float, sys.argv[13:17])
load_w, load_end = sys.argv[17:19]
vehicles, nodes, base, rss, rss_end = int(vehicles), int(nodes), int(base), int(rss), int(rss_end)
idle = json.load(open(f"{out}/sim_idle.json")); rep = json.load(open(f"{out}/sim_report.json"))
logins = idle["logins"] + rep["logins"]
secs = s1 - s0
wcpu = [b - a for a, b in zip(w0, w1)]
r = {
    "vehicles": vehicles, "nodes": nodes, "logins": logins,
    "connect_errors": idle["connect_errors"] + rep["connect_errors"],
    "all_logged_in_s": max(idle["all_logged_in_s"], rep["all_logged_in_s"]),
    "connections_per_node": list(map(int, conns.split())),
    "rss_kib_base_all_nodes": base, "rss_kib_loaded_all_nodes": rss,
    "rss_kib_per_node": list(map(int, per_node.split())),
    "rss_bytes_per_connection": round((rss - base) * 1024 / max(logins, 1)),
    "rss_bytes_per_connection_end_of_window": round((rss_end - base) * 1024 / max(logins, 1)),
    "window_s": round(secs, 1),
    "cpu_s_window": {"vgate_per_node": [round(x, 2) for x in wcpu[:-1]],
                     "vgate_all": round(sum(wcpu[:-1]), 2), "mosquitto": round(wcpu[-1], 2),
                     "simulators": round(sims1 - sims0, 2)},
    "cpu_cores_window": {"vgate_all": round(sum(wcpu[:-1]) / secs, 2),
                         "mosquitto": round(wcpu[-1] / secs, 2),
                         "simulators": round((sims1 - sims0) / secs, 2)},
    "cpu_s_whole_run": {"vgate_all": round(sum(b - a for a, b in zip(c0[:-1], c1[:-1])), 2),
                        "mosquitto": round(c1[-1] - c0[-1], 2)},
    "reports": rep["frames_sent"], "report_acks": rep["acks"], "report_errors": rep["errors"],
    "report_ack_ms_p50": rep["latency_ms_p50"], "report_ack_ms_p99": rep["latency_ms_p99"],
    "report_drive_acks_per_s": round(rep["drive_acks_per_s"]),
    "idle_disconnects": idle["disconnects"], "report_disconnects": rep["disconnects"],
    "loadavg_window": load_w, "loadavg_end": load_end,
}
json.dump(r, open(f"{out}/phase1.json", "w"), indent=2)
print(f"logins {logins}/{vehicles} ({r['connect_errors']} connect errors), all logged in after {r['all_logged_in_s']:.1f} s")
print(f"connections per node: {r['connections_per_node']} (open files less the idle node's)")
print(f"RSS all nodes {base} KiB -> {rss} KiB: {r['rss_bytes_per_connection']} bytes per connection "
      f"({r['rss_bytes_per_connection_end_of_window']} at the window's end)")
c = r["cpu_cores_window"]
print(f"steady window {secs:.0f} s (load {load_w}): vgate {c['vgate_all']} cores in all "
      f"({r['cpu_s_window']['vgate_per_node']} CPU-s per node), mosquitto {c['mosquitto']}, simulators {c['simulators']}")
print(f"reporting vehicles: {rep['frames_sent']} frames, {rep['acks']} acks ({r['report_drive_acks_per_s']}/s), "
      f"{rep['errors']} errors, ack p50 {rep['latency_ms_p50']} ms p99 {rep['latency_ms_p99']} ms")
print(f"disconnects: idle {idle['disconnects']}, reporting {rep['disconnects']}")
PY
for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
fi

if phase 2; then
rm -f "$OUT/mosquitto.log"
start_broker
PORT=$(free_port)
echo "== 2. commands on one process: $ONE_NODE vehicles online, $COMMANDS commands at once to random distinct ones; load $(loadavg)"
start_node one; ONE=$NODE_PID
wait_listening "$OUT/node-one"
"$VGATE" simulate --protocol jt808 --vehicles "$ONE_NODE" --rate 0 --heartbeat-s 60 --duration 300s \
  --first-id 13700000000 --source-ip "$SOURCES" --target "127.0.0.1:$PORT" >/dev/null 2>&1 &
SIM=$!
PIDS+=("$SIM")
for _ in $(seq 60); do sleep 1; [ "$(fds "$ONE")" -ge "$ONE_NODE" ] && break; done
sleep 3
python3 -c "import random; [print(f'{13700000000 + i:012d}') for i in random.sample(range($ONE_NODE), $COMMANDS)]" >"$OUT/one_ids.txt"
V0=$(cpu_s "$ONE"); M0=$(cpu_s "$MOSQ")
"$BM" commands --port "$MQ" --count "$COMMANDS" --ids-file "$OUT/one_ids.txt" --status acked \
  --timeout 60 >"$OUT/one_commands.json" || true
V1=$(cpu_s "$ONE"); M1=$(cpu_s "$MOSQ")
kill "$SIM" 2>/dev/null; wait "$SIM" 2>/dev/null || true
kill "$ONE"; wait "$ONE" 2>/dev/null || true
python3 - "$OUT/one_commands.json" "$COMMANDS" "$V0" "$V1" "$M0" "$M1" "$(loadavg)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); v0, v1, m0, m1 = map(float, sys.argv[3:7])
print(f"{r['results']}/{n} acked in {r['seconds']} s: {r['rate']} commands/s; latency publish -> acked "
      f"p50 {r['latency_ms_p50']} ms, p99 {r['latency_ms_p99']} ms, max {r['latency_ms_max']} ms; "
      f"CPU s vgate {v1 - v0:.2f} ({(v1 - v0) / n * 1e6:.0f} us per command), mosquitto {m1 - m0:.2f}; load {sys.argv[7]}")
PY
fi
