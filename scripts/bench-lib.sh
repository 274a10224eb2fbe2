# Helpers both benchmarks use (scripts/bench.sh, scripts/bench-100k.sh): sourced, with OUT set.
# Processes started with `PIDS+=(...)` are stopped when the script exits.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(open('$1'))$2)"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# A fresh Mosquitto on a free port ($MQ, pid $MOSQ), stopping the previous one first: a
# broker that carried a step holds the memory it freed, and its first hundreds of
# milliseconds on the next step show it (50-90 ms worst latencies in bench.sh step 2).
MOSQ=
start_broker() {
  [ -n "${MOSQ:-}" ] && { kill "$MOSQ" 2>/dev/null; wait "$MOSQ" 2>/dev/null || true; }
  MQ=$(free_port)
  cat >"$OUT/mosquitto.conf" <<CONF
listener $MQ 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
persistence false
CONF
  mosquitto -c "$OUT/mosquitto.conf" >>"$OUT/mosquitto.log" 2>&1 &
  MOSQ=$!
  PIDS+=("$MOSQ")
  sleep 0.5
}
