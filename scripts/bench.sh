#!/usr/bin/env bash
# The gateway benchmark (README "Benchmark"; figures in docs/PERFORMANCE.md), in one run on
# this machine, each step against a fresh Mosquitto it starts on a free port:
#
#   1. throughput, side by side, the same N messages both times and the rate taken at the
#      subscriber (first to last message) both times: N equivalent messages (the size of
#      vgate's location event, the same topic shape) published straight to Mosquitto by
#      CLIENTS closed-loop QoS 1 publishers; then N location reports from VEHICLES simulated
#      JT/T 808 terminals in closed-loop flood mode (`simulate --rate max --window W`: each
#      keeps W reports unacknowledged, a new one per 0x8001) -> vgate -> Mosquitto -> the
#      subscriber;
#   2. latency frame-in -> MQTT-out (the event's received_at to the subscriber) at half the
#      rate vgate reached in 1 (open loop: a timer per terminal), then the broker path alone
#      at the same rate (stamped messages published open loop straight to Mosquitto);
#   3. IDLE authenticated JT/T 808 connections on one vgate process: RSS per connection, and the
#      time for all of them to connect and log in at once (a reconnect storm).
#   4. command intake: COMMANDS commands published at once, one QoS 1 message each, to as many
#      offline vehicles (a fleet-wide push); the rate is first publish to last `queued` result;
#      4b. the same to ONLINE connected terminals (simulated; each answers every command), the
#      rate first publish to last `acked` result (stored, written, answered, settled).
#   5. memory soak (not in the default STEPS): SOAK seconds of SOAK_VEHICLES terminals
#      reporting every second, 50 terminals reconnecting every 5 s and a command every 100 ms,
#      nobody scraping /metrics; RSS sampled every second, the slope of the lowest RSS of each
#      30 s window after the first third.
#   6. TLS (not in the default STEPS): a login storm of STORM JT/T 808 vehicles (connect,
#      handshake, register, authenticate, all at once) on plain TCP, TLS with an ECDSA P-256
#      and with an RSA-2048 server certificate, and mutual TLS (ECDSA, a client certificate);
#      then RSS per idle connection, plain and TLS (IDLE_TLS of each, on a fresh vgate each);
#      then PRELOGIN connections that never log in, each holding the most a connection may
#      send before login (a JT/T 808 frame opened and never closed), and RSS per connection.
#      The PKI is made with openssl in $OUT/pki.
#
# Usage: scripts/bench.sh   (override with env N, VEHICLES, WINDOW, CLIENTS, DURATION, IDLE,
#                            STORM, IDLE_TLS, PRELOGIN, STEPS, OUT)
# Binaries are built in ${CARGO_TARGET_DIR:-target}/release.
# Results: one JSON file per step in $OUT (default target/bench; step 1: throughput.json with
# both rates, the ratio and the CPU seconds of each process), and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

VEHICLES=${VEHICLES:-200}      # simulated terminals for throughput/latency
N=${N:-400000}                 # messages in step 1, direct and through vgate
WINDOW=${WINDOW:-8}            # reports each terminal keeps unacknowledged in step 1
CLIENTS=${CLIENTS:-4}          # direct publishers in step 1 (1000 in flight each)
DURATION=${DURATION:-10}       # seconds of driving in step 2
RATE=${RATE:-100}              # step 2 without step 1: half of VEHICLES x RATE x 2 per second
IDLE=${IDLE:-15000}            # idle connections in step 3 (this machine: 20,000 fds per process)
COMMANDS=${COMMANDS:-50000}    # commands in step 4
ONLINE=${ONLINE:-1000}         # online terminals the commands of step 4b go to
SOAK=${SOAK:-600}              # seconds of step 5
SOAK_VEHICLES=${SOAK_VEHICLES:-2000}
STORM=${STORM:-2000}           # vehicles of each login storm in step 6
IDLE_TLS=${IDLE_TLS:-5000}     # idle connections of each kind in step 6
PRELOGIN=${PRELOGIN:-5000}     # connections that never log in in step 6
STEPS=${STEPS:-"1 2 3 4"}      # which steps to run ("5": the soak)
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

cargo build --release -q -p gateway --bin vgate --example bench_mqtt
BIN=${CARGO_TARGET_DIR:-target}/release
VGATE=${VGATE_BIN:-$BIN/vgate} # VGATE_BIN: another build of vgate to measure (A/B)
BM=$BIN/examples/bench_mqtt

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

source scripts/bench-lib.sh
rm -f "$OUT/mosquitto.log"

start_vgate() { # $1 = name; prints "pid jt808_addr"
  local dir="$OUT/vgate-$1"; rm -rf "$dir"; mkdir -p "$dir"
  VGATE_MQTT_URL="mqtt://127.0.0.1:$MQ" VGATE_JT808_LISTEN=127.0.0.1:0 VGATE_GBT32960_LISTEN=off \
    VGATE_HTTP_LISTEN=off VGATE_DATA_DIR="$dir" VGATE_NODE_ID="bench-$1" VGATE_LOG=warn \
    env ${VGATE_WORKERS:+TOKIO_WORKER_THREADS=$VGATE_WORKERS} \
    "$VGATE" run ${VGATE_CONFIG:+--config "$VGATE_CONFIG"} >"$dir/stdout" 2>"$dir/stderr" &
  local pid=$!
  for _ in $(seq 100); do grep -q '^listening jt808' "$dir/stdout" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q '^listening jt808' "$dir/stdout" 2>/dev/null; then
    echo "vgate did not start; $dir/stderr:" >&2; cat "$dir/stderr" >&2; kill "$pid" 2>/dev/null; exit 1
  fi
  echo "$pid $(awk '/^listening jt808/ {print $3}' "$dir/stdout")"
}

# Starts the counting subscriber in the background ($1 filter, $2 count, $3 name of its
# output) and waits for its SUBACK, so that nothing is published before it listens. Sets SUB.
start_counter() {
  rm -f "$OUT/$3.err"
  "$BM" count --port "$MQ" --filter "$1" --count "$2" --timeout 10 --sample "$OUT/$3.sample" \
    >"$OUT/$3.json" 2>"$OUT/$3.err" &
  SUB=$!
  for _ in $(seq 200); do grep -q '^suback' "$OUT/$3.err" 2>/dev/null && break; sleep 0.05; done
}

# CPU seconds (user + system) a process has used so far (0 once it is gone).
# Writes `cpu_s $1` to $2 every 0.2 s while the process lives: the file ends with its total.
watch_cpu() {
  while [ -e "/proc/$1/stat" ]; do
    local c; c=$(cpu_s "$1"); [ "$c" != 0 ] && echo "$c" >"$2"; sleep 0.2
  done
}
last_cpu() { cat "$1" 2>/dev/null || echo 0; }

# Read and write syscalls a process has made so far ("reads writes", from /proc/PID/io).
# (Mosquitto's; vgate's sockets go through recvfrom/sendto, which these counters leave out.)
sysc() { awk '/^syscr/ {r=$2} /^syscw/ {w=$2} END {print r+0, w+0}' "/proc/$1/io" 2>/dev/null || echo "0 0"; }

step() { [[ " $STEPS " == *" $1 "* ]]; }

VIA=${VIA:-0}
if step 1; then
start_broker
LOAD_BEFORE=$(loadavg)
echo "== 1. throughput: $N messages direct to Mosquitto, then through vgate (load $LOAD_BEFORE)"
rm -f "$OUT"/cpu_*
M0=$(cpu_s "$MOSQ"); MS0=$(sysc "$MOSQ")
start_counter 'direct/#' "$N" direct
watch_cpu "$SUB" "$OUT/cpu_direct_sub" &
"$BM" publish --port "$MQ" --count "$N" --clients "$CLIENTS" --ids "$VEHICLES" >"$OUT/direct_pub.json" &
PUB=$!
watch_cpu "$PUB" "$OUT/cpu_direct_pub" &
wait "$PUB"
wait "$SUB"
M1=$(cpu_s "$MOSQ"); MS1=$(sysc "$MOSQ")

read -r VPID JT < <(start_vgate throughput)
PIDS+=("$VPID")
start_counter 'vgate/v1/+/location' "$N" vgate
watch_cpu "$SUB" "$OUT/cpu_vgate_sub" &
V0=$(cpu_s "$VPID")
"$VGATE" simulate --protocol jt808 --vehicles "$VEHICLES" --rate max --window "$WINDOW" \
  --count "$N" --duration 300s --target "$JT" --json >"$OUT/sim_throughput.json" &
SIM=$!
watch_cpu "$SIM" "$OUT/cpu_sim" &
wait "$SIM"
wait "$SUB"
V1=$(cpu_s "$VPID")
M2=$(cpu_s "$MOSQ"); MS2=$(sysc "$MOSQ")
kill "$VPID"; wait "$VPID" 2>/dev/null || true
sleep 0.3 # the last CPU samples of the watchers
LOAD_AFTER=$(loadavg)

python3 - "$OUT" "$N" "$VEHICLES" "$WINDOW" "$CLIENTS" "$LOAD_BEFORE" "$LOAD_AFTER" \
  "$M0" "$M1" "$M2" "$V0" "$V1" "$(last_cpu "$OUT/cpu_direct_pub")" \
  "$(last_cpu "$OUT/cpu_direct_sub")" "$(last_cpu "$OUT/cpu_sim")" \
  "$(last_cpu "$OUT/cpu_vgate_sub")" "$MS0 $MS1 $MS2" <<'PY'
import json, sys
out, n, vehicles, window, clients, load0, load1 = sys.argv[1:8]
m0, m1, m2, v0, v1, pub, sub_d, sim, sub_v = map(float, sys.argv[8:17])
ms0r, ms0w, ms1r, ms1w, ms2r, ms2w = map(int, sys.argv[17].split())
per = lambda x: round(x / int(n), 2)
d = json.load(open(f"{out}/direct.json"))
v = json.load(open(f"{out}/vgate.json"))
p = json.load(open(f"{out}/direct_pub.json"))
s = json.load(open(f"{out}/sim_throughput.json"))
r = {
    "messages": int(n), "vehicles": int(vehicles), "window": int(window),
    "direct_clients": int(clients),
    "direct_rate": d["rate"], "direct_received": d["received"], "direct_seconds": d["seconds"],
    "direct_payload_bytes": d["payload_bytes_avg"], "direct_publisher_rate": p["rate"],
    "vgate_rate": v["rate"], "vgate_received": v["received"], "vgate_seconds": v["seconds"],
    "vgate_payload_bytes": v["payload_bytes_avg"],
    "ratio": round(v["rate"] / max(d["rate"], 1), 3),
    "sim_frames_sent": s["frames_sent"], "sim_acks": s["acks"], "sim_errors": s["errors"],
    "sim_frames_per_s": round(s["drive_frames_per_s"]),
    "sim_ack_ms_p50": s["latency_ms_p50"], "sim_ack_ms_p99": s["latency_ms_p99"],
    "cpu_s": {
        "direct": {"mosquitto": round(m1 - m0, 2), "publisher": pub, "subscriber": sub_d},
        "via_vgate": {"vgate": round(v1 - v0, 2), "mosquitto": round(m2 - m1, 2),
                      "simulator": sim, "subscriber": sub_v},
    },
    "syscalls_per_message": {
        "direct": {"mosquitto": {"read": per(ms1r - ms0r), "write": per(ms1w - ms0w)}},
        "via_vgate": {"mosquitto": {"read": per(ms2r - ms1r), "write": per(ms2w - ms1w)}},
    },
    "loadavg_before": load0, "loadavg_after": load1,
}
json.dump(r, open(f"{out}/throughput.json", "w"), indent=2)
c = r["cpu_s"]
print(f"direct to Mosquitto: {d['rate']:.0f} msg/s ({d['received']} in {d['seconds']} s, "
      f"{d['payload_bytes_avg']:.0f} B payloads)")
print(f"via vgate:           {v['rate']:.0f} msg/s ({v['received']} in {v['seconds']} s, "
      f"{v['payload_bytes_avg']:.0f} B payloads): {100 * r['ratio']:.0f}% of direct")
print(f"simulator (window {window}): {s['frames_sent']} reports, {s['acks']} acks, "
      f"{s['errors']} errors, {r['sim_frames_per_s']} frames/s, "
      f"ack p50 {s['latency_ms_p50']} ms p99 {s['latency_ms_p99']} ms")
print("CPU s, direct: " + ", ".join(f"{k} {x:.1f}" for k, x in c["direct"].items())
      + "; via vgate: " + ", ".join(f"{k} {x:.1f}" for k, x in c["via_vgate"].items()))
y = r["syscalls_per_message"]
print("read/write syscalls per message, direct: mosquitto "
      + "{read}/{write}".format(**y["direct"]["mosquitto"]) + "; via vgate: "
      + ", ".join(f"{k} {x['read']}/{x['write']}" for k, x in y["via_vgate"].items()))
print(f"load average before {load0}, after {load1}")
PY
VIA=$(json "$OUT/vgate.json" "['rate']")
fi

if step 2; then
start_broker
[ "$VIA" = 0 ] && VIA=$((VEHICLES * RATE * 2))
echo "== 2. latency at half that rate (load $(loadavg))"
HALF=$(python3 -c "print(max(1, int($VIA / 2 / $VEHICLES)))")
read -r VPID JT < <(start_vgate latency)
PIDS+=("$VPID")
start_counter 'vgate/v1/+/location' $((VEHICLES * HALF * DURATION)) latency
rm -f "$OUT"/cpu_lat_*
M0=$(cpu_s "$MOSQ"); V0=$(cpu_s "$VPID")
watch_cpu "$SUB" "$OUT/cpu_lat_sub" &
"$VGATE" simulate --protocol jt808 --vehicles "$VEHICLES" --rate "$HALF" --duration "${DURATION}s" \
  --target "$JT" --json >"$OUT/sim_latency.json" &
SIM=$!
watch_cpu "$SIM" "$OUT/cpu_lat_sim" &
wait "$SIM"
wait "$SUB"
M1=$(cpu_s "$MOSQ"); V1=$(cpu_s "$VPID")
kill "$VPID"; wait "$VPID" 2>/dev/null || true
sleep 0.3 # the last CPU samples of the watchers
echo "CPU s over the ${DURATION} s: vgate $(python3 -c "print(round($V1-$V0,1))"), mosquitto $(python3 -c "print(round($M1-$M0,1))"), simulator $(last_cpu "$OUT/cpu_lat_sim"), subscriber $(last_cpu "$OUT/cpu_lat_sub")"
echo "rate $((VEHICLES * HALF))/s offered, $(json "$OUT/latency.json" "['rate']")/s received: frame-in -> MQTT-out p50 $(json "$OUT/latency.json" "['latency_ms_p50']") ms, p99 $(json "$OUT/latency.json" "['latency_ms_p99']") ms (after the first second: p50 $(json "$OUT/latency.json" "['latency_ms_p50_after_1s']") ms, p99 $(json "$OUT/latency.json" "['latency_ms_p99_after_1s']") ms); terminal ack p99 $(json "$OUT/sim_latency.json" "['latency_ms_p99']") ms"
# The broker path alone at the same rate: the same number of stamped messages published
# open loop straight to Mosquitto by CLIENTS clients, latency publish -> subscriber.
start_counter 'direct/#' $((VEHICLES * HALF * DURATION)) latency_direct
"$BM" publish --port "$MQ" --count $((VEHICLES * HALF * DURATION)) --clients "$CLIENTS" \
  --ids "$VEHICLES" --rate $((VEHICLES * HALF)) >"$OUT/latency_direct_pub.json"
wait "$SUB"
echo "the broker path alone at that rate (publisher -> Mosquitto -> subscriber): p50 $(json "$OUT/latency_direct.json" "['latency_ms_p50']") ms, p99 $(json "$OUT/latency_direct.json" "['latency_ms_p99']") ms (after the first second: p99 $(json "$OUT/latency_direct.json" "['latency_ms_p99_after_1s']") ms)"

fi

if step 3; then
start_broker
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

if step 4; then
start_broker
echo "== 4. command intake: $COMMANDS commands at once, one message each, to offline vehicles"
read -r VPID JT < <(start_vgate commands)
PIDS+=("$VPID")
"$BM" commands --port "$MQ" --count "$COMMANDS" >"$OUT/commands.json"
kill "$VPID"; wait "$VPID" 2>/dev/null || true
echo "$(json "$OUT/commands.json" "['results']") of $COMMANDS queued in $(json "$OUT/commands.json" "['seconds']") s: $(json "$OUT/commands.json" "['rate']") commands/s (published in $(json "$OUT/commands.json" "['publish_seconds']") s)"
start_broker
echo "== 4b. online delivery: $COMMANDS commands at once, one message each, to $ONLINE online terminals, to the last acked"
read -r VPID JT < <(start_vgate delivery)
PIDS+=("$VPID")
start_counter 'vgate/v1/+/status' "$ONLINE" online
"$VGATE" simulate --protocol jt808 --vehicles "$ONLINE" --first-id 13700000000 --rate 0.2 \
  --duration 300s --target "$JT" >/dev/null 2>&1 &
SIM=$!
wait "$SUB" || true
V0=$(cpu_s "$VPID"); M0=$(cpu_s "$MOSQ"); S0=$(cpu_s "$SIM")
"$BM" commands --port "$MQ" --count "$COMMANDS" --ids "$ONLINE" --first-id 13700000000 \
  --status acked --timeout 60 >"$OUT/delivery.json"
V1=$(cpu_s "$VPID"); M1=$(cpu_s "$MOSQ"); S1=$(cpu_s "$SIM")
kill "$SIM" 2>/dev/null; wait "$SIM" 2>/dev/null || true
kill "$VPID"; wait "$VPID" 2>/dev/null || true
echo "$(json "$OUT/delivery.json" "['results']") of $COMMANDS acked in $(json "$OUT/delivery.json" "['seconds']") s: $(json "$OUT/delivery.json" "['rate']") commands/s"
python3 -c "print(f'CPU s: vgate {$V1-$V0:.2f} ({($V1-$V0)/$COMMANDS*1e6:.0f} us per command), mosquitto {$M1-$M0:.2f}, terminals {$S1-$S0:.2f}; load $(loadavg)')"
fi

if step 5; then
start_broker
echo "== 5. memory soak: $SOAK s, $SOAK_VEHICLES terminals at 1 report/s, churn, commands, no scrape"
read -r VPID JT < <(start_vgate soak)
PIDS+=("$VPID")
"$VGATE" simulate --protocol jt808 --vehicles "$SOAK_VEHICLES" --rate 1 --duration "$((SOAK + 10))s" \
  --target "$JT" --json >"$OUT/sim_soak.json" &
SIM=$!
( end=$((SECONDS + SOAK)); while [ $SECONDS -lt $end ]; do
    "$VGATE" simulate --protocol jt808 --vehicles 50 --first-id 13600000000 --rate 1 --duration 3s \
      --target "$JT" >/dev/null 2>&1 || true
  done ) &
CHURN=$!
( i=0; end=$((SECONDS + SOAK)); while [ $SECONDS -lt $end ]; do
    mosquitto_pub -p "$MQ" -q 1 -t "vgate/v1/0$((13800000000 + i % SOAK_VEHICLES))/cmd" \
      -m "{\"id\":\"soak-$i\",\"type\":\"text\",\"params\":{\"text\":\"soak\"}}" || true
    i=$((i + 1)); sleep 0.1
  done ) &
CMDS=$!
: >"$OUT/soak_rss.txt"
for t in $(seq "$SOAK"); do sleep 1; echo "$t $(rss_kib "$VPID")" >>"$OUT/soak_rss.txt"; done
kill "$CHURN" "$CMDS" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true
kill "$VPID"; wait "$VPID" 2>/dev/null || true
python3 - "$OUT/soak_rss.txt" "$SOAK" >"$OUT/soak.json" <<'PY'
import json, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
soak = float(sys.argv[2]); warm = soak / 3
after = [(t, kib * 1024) for t, kib in rows if t >= warm]
lows = {}
for t, b in after:
    k = int((t - warm) // 30)
    lows[k] = min(lows.get(k, b), b)
pts = [(warm + 30 * k + 15, b) for k, b in sorted(lows.items())]
n = len(pts); mx = sum(p[0] for p in pts) / n; my = sum(p[1] for p in pts) / n
den = sum((p[0] - mx) ** 2 for p in pts) or 1
slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / den
print(json.dumps({"seconds": soak, "rss_mb_first": round(pts[0][1] / 1e6, 1),
                  "rss_mb_last": round(pts[-1][1] / 1e6, 1), "rss_mb_max": round(max(b for _, b in after) / 1e6, 1),
                  "slope_bytes_per_s": round(slope)}))
PY
echo "RSS (lowest of each 30 s after the first third) $(json "$OUT/soak.json" "['rss_mb_first']") -> $(json "$OUT/soak.json" "['rss_mb_last']") MB, slope $(json "$OUT/soak.json" "['slope_bytes_per_s']") bytes/s; $(json "$OUT/sim_soak.json" "['frames_sent']") reports"
fi

if step 6; then
start_broker
echo "== 6. TLS: login storms of $STORM vehicles, RSS per idle connection, pre-login memory"
PKI="$OUT/pki"; rm -rf "$PKI"; mkdir -p "$PKI"
( cd "$PKI"
  EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  openssl req -x509 "${EC[@]}" -nodes -days 30 -keyout ca.key -out ca.pem -subj "/CN=bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  for kind in ec rsa; do
    if [ $kind = ec ]; then KEY=("${EC[@]}"); else KEY=(-newkey rsa:2048); fi
    openssl req "${KEY[@]}" -nodes -keyout server-$kind.key -out server-$kind.csr -subj "/CN=localhost"
    openssl x509 -req -in server-$kind.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -out server-$kind.pem -extfile <(printf "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
  done
  openssl req "${EC[@]}" -nodes -keyout client.key -out client.csr -subj "/CN=bench vehicle"
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -out client.pem -extfile <(printf "extendedKeyUsage=clientAuth")
) >/dev/null 2>&1
cat >"$OUT/tls.toml" <<TOML
[[jt808.listeners]]
name = "tls-ec"
listen = "127.0.0.1:0"
tls = { cert_file = "$PKI/server-ec.pem", key_file = "$PKI/server-ec.key" }
[[jt808.listeners]]
name = "tls-rsa"
listen = "127.0.0.1:0"
tls = { cert_file = "$PKI/server-rsa.pem", key_file = "$PKI/server-rsa.key" }
[[jt808.listeners]]
name = "mtls-ec"
listen = "127.0.0.1:0"
tls = { cert_file = "$PKI/server-ec.pem", key_file = "$PKI/server-ec.key", client_ca_file = "$PKI/ca.pem" }
TOML
TLS_ARGS=(--tls --tls-ca "$PKI/ca.pem" --tls-server-name localhost)
listener_addr() { awk -v n="$2" '$1 == "listening" && $2 == n {print $3}' "$OUT/vgate-$1/stdout"; }
read -r VPID JT < <(VGATE_CONFIG="$OUT/tls.toml" start_vgate tls)
PIDS+=("$VPID")
sleep 0.5
k=0
for l in jt808 tls-ec tls-rsa mtls-ec; do
  args=()
  case $l in
    tls-*) args=("${TLS_ARGS[@]}") ;;
    mtls-*) args=("${TLS_ARGS[@]}" --tls-cert "$PKI/client.pem" --tls-key "$PKI/client.key") ;;
  esac
  C0=$(cpu_s "$VPID")
  "$VGATE" simulate --protocol jt808 --vehicles "$STORM" --rate 0 --heartbeat-s 600 --duration 1s \
    --first-id $((13700000000 + k * STORM)) --target "$(listener_addr tls "$l")" "${args[@]}" \
    --json >"$OUT/storm_$l.json"
  C1=$(cpu_s "$VPID")
  k=$((k + 1))
  python3 - "$OUT/storm_$l.json" "$l" "$STORM" "$(python3 -c "print($C1 - $C0)")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); name, n, cpu = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
t = s["all_logged_in_s"] or float("nan")
print(f"{name:8} logins {s['logins']}/{n} in {t:.2f} s: {s['logins'] / t:.0f} logins/s; "
      f"vgate CPU {cpu:.2f} s: {s['logins'] / cpu if cpu else float('nan'):.0f} logins per vgate CPU-second")
PY
done
kill "$VPID"; wait "$VPID" 2>/dev/null || true

idle_rss() { # $1 = name, $2 = listener, $3... simulate args
  read -r VPID JT < <(VGATE_CONFIG="$OUT/tls.toml" start_vgate "idle-$1")
  PIDS+=("$VPID")
  sleep 1
  local base; base=$(rss_kib "$VPID")
  "$VGATE" simulate --protocol jt808 --vehicles "$IDLE_TLS" --rate 0 --heartbeat-s 600 --duration 50s \
    --target "$(listener_addr "idle-$1" "$2")" "${@:3}" --json >"$OUT/idle_$1.json" &
  local sim=$!
  # jemalloc returns the handshakes' freed memory over ~40 s: read the settled figure.
  sleep 45
  local loaded; loaded=$(rss_kib "$VPID")
  wait "$sim"
  kill "$VPID"; wait "$VPID" 2>/dev/null || true
  local logins; logins=$(json "$OUT/idle_$1.json" "['logins']")
  echo "idle $1: logins $logins/$IDLE_TLS; RSS $base KiB -> $loaded KiB: $(python3 -c "print(round(($loaded-$base)/max($logins,1)*1024))") bytes per connection"
}
idle_rss plain jt808
idle_rss tls tls-ec "${TLS_ARGS[@]}"

read -r VPID JT < <(start_vgate prelogin)
PIDS+=("$VPID")
sleep 1
BASE=$(rss_kib "$VPID")
python3 - "$JT" "$PRELOGIN" "$VPID" "$BASE" "$VGATE" <<'PY'
# PRELOGIN connections, each sending a JT/T 808 frame opened (0x7e) and never closed: 4,000
# bytes the gateway holds until the frame ends (the pre-login bound is 4,096). Meanwhile a
# good vehicle logs in and reports.
import json, resource, socket, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
host, port = sys.argv[1].rsplit(":", 1); n = int(sys.argv[2]); pid = sys.argv[3]; base = int(sys.argv[4])
vgate = sys.argv[5]
payload = b"\x7e" + b"\x01" * 3999
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port))); s.sendall(payload); socks.append(s)
time.sleep(3)
rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
good = json.loads(subprocess.run(
    [vgate, "simulate", "--protocol", "jt808", "--vehicles", "1", "--rate", "5", "--duration", "2s",
     "--first-id", "13900000000", "--target", sys.argv[1], "--json"],
    capture_output=True, text=True).stdout)
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += 1 if s.recv(1) != b"" else 0
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
print(f"pre-login: {n} connections each holding 4,000 bytes of an unfinished frame, {alive} still open; "
      f"RSS {base} KiB -> {rss} KiB: {round((rss - base) * 1024 / n)} bytes per connection; "
      f"meanwhile a good vehicle: {good['logins']} login, {good['acks']}/{good['frames_sent']} reports acked, "
      f"p99 {good['latency_ms_p99']} ms")
PY
kill "$VPID"; wait "$VPID" 2>/dev/null || true
fi
