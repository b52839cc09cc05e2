#!/usr/bin/env bash
# klein-bench against redis-benchmark on one Redis (no persistence), same client settings:
# -c CLIENTS -d DATASIZE -r KEYSPACE, pipelines PIPELINES, tests TESTS, about DURATION s per run,
# REPEATS rounds with the two tools alternating which goes first. Redis runs on SERVER_CPU and
# both tools on CLIENT_CPU (taskset), as in ../shared/PERFORMANCE.md. Each tool's CPU time is
# taken with /usr/bin/time (whole process); klein-bench also reports its own (measured window);
# redis-server's busy share of each run (from /proc/PID/stat) says which side was the limit.
#
# Usage: perf/loadgen_vs_redis_benchmark.sh OUT_DIR     (OUT_DIR must not exist yet)
#   DURATION 10  REPEATS 3  CLIENTS 50  DATASIZE 64  KEYSPACE 100000  PIPELINES "1 16"
#   TESTS "set get"  SERVER_CPU 1  CLIENT_CPU 0  KLEIN_BENCH target/release/klein-bench
# Writes OUT_DIR/runs.csv (one row per run), OUT_DIR/table.md (median [min..max]),
# OUT_DIR/machine.txt, OUT_DIR/json/*.json (klein-bench) and OUT_DIR/raw/ (tool outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DURATION:=10}" "${REPEATS:=3}" "${CLIENTS:=50}" "${DATASIZE:=64}" "${KEYSPACE:=100000}"
: "${PIPELINES:=1 16}" "${TESTS:=set get}" "${SERVER_CPU:=1}" "${CLIENT_CPU:=0}"
: "${KLEIN_BENCH:=target/release/klein-bench}"
OUT="${1:?usage: $0 OUT_DIR}"
if [[ -e "$OUT" ]]; then echo "$OUT exists: results are never overwritten" >&2; exit 2; fi
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null \
  || { echo "needs redis-server and redis-benchmark (apt-get install redis-server)" >&2; exit 2; }
[[ -x "$KLEIN_BENCH" ]] || { echo "build it first: cargo build --release --bin klein-bench" >&2; exit 2; }
mkdir -p "$OUT/json" "$OUT/raw"

DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DATA" --save "" \
  --appendonly no --daemonize no --logfile "$DATA/redis.log" &
REDIS_PID=$!
cleanup() { kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' (+ uncommitted changes)')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs"
  echo "rustc: $(rustc --version)"
  echo "redis: $(redis-server --version)"
  echo "placement: redis-server on CPU $SERVER_CPU, load generators on CPU $CLIENT_CPU"
  echo "load before: $(cat /proc/loadavg)"
  echo "top CPU consumers before:"; top -bn1 | sed -n '7,14p'
} > "$OUT/machine.txt"

CSV="$OUT/runs.csv"
echo "rep,pipeline,test,tool,ops_per_s,p50_ms,p99_ms,max_ms,requests,server_calls,cpu_s,cpu_us_per_op,self_cpu_us_per_op,server_busy_pct,loadavg" > "$CSV"

# redis-server's CPU time so far, in clock ticks (utime + stime), and the wall clock in ticks.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$REDIS_PID/stat"; }
now_ticks() { python3 -c 'import time; print(int(time.monotonic() * 100))'; }
# The server's busy share of the wall time since the given tick counts, in percent.
busy_pct() { # server_ticks_before wall_ticks_before
  python3 -c "import sys; print(round(100 * ($(server_ticks) - $1) / max(1, $(now_ticks) - $2)))"
}

# Redis's own count of the test's command since the last reset (a cross-check of `requests`).
server_calls() { # test
  redis-cli -p "$PORT" info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"
}

redis_benchmark() { # test pipeline n -> csv line
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t "$1" -c "$CLIENTS" -d "$DATASIZE" \
    -r "$KEYSPACE" -P "$2" -n "$3" --precision 3 --csv 2>/dev/null | tail -1 | tr -d '"'
}

run_rb() { # rep test pipeline
  local rep=$1 test=$2 pipe=$3 n0 cal rps n tag line
  n0=$((pipe > 1 ? 200000 : 20000))
  cal="$(redis_benchmark "$test" "$pipe" "$n0")"
  rps="$(echo "$cal" | cut -d, -f2)"
  n="$(python3 -c "import sys; print(max($n0, int(float(sys.argv[1]) * $DURATION)))" "${rps:-0}")"
  tag="rb-$test-P$pipe-rep$rep"
  redis-cli -p "$PORT" config resetstat >/dev/null
  echo "redis-benchmark -p $PORT -t $test -c $CLIENTS -d $DATASIZE -r $KEYSPACE -P $pipe -n $n --precision 3 --csv" > "$OUT/raw/$tag.cmd"
  local s0 w0 busy
  s0="$(server_ticks)"; w0="$(now_ticks)"
  /usr/bin/time -f '%U %S' -o "$OUT/raw/$tag.time" \
    taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t "$test" -c "$CLIENTS" -d "$DATASIZE" \
      -r "$KEYSPACE" -P "$pipe" -n "$n" --precision 3 --csv > "$OUT/raw/$tag.csv" 2>/dev/null
  busy="$(busy_pct "$s0" "$w0")"
  line="$(tail -1 "$OUT/raw/$tag.csv" | tr -d '"')"
  python3 - "$rep" "$pipe" "$test" "$n" "$line" "$(cat "$OUT/raw/$tag.time")" "$(cut -d' ' -f1 /proc/loadavg)" "$(server_calls "$test")" "$busy" >> "$CSV" <<'EOF'
import sys
rep, pipe, test, n, line, times, load, calls, busy = sys.argv[1:]
_, rps, avg, mn, p50, p95, p99, mx = line.split(",")
cpu = sum(float(x) for x in times.split())
print(f"{rep},{pipe},{test},redis-benchmark,{float(rps):.0f},{p50},{p99},{mx},{n},{calls},{cpu:.2f},"
      f"{cpu * 1e6 / int(n):.2f},,{busy},{load}")
EOF
}

run_kb() { # rep test pipeline
  local rep=$1 test=$2 pipe=$3 tag
  tag="kb-$test-P$pipe-rep$rep"
  redis-cli -p "$PORT" config resetstat >/dev/null
  echo "$KLEIN_BENCH -p $PORT --mix $test -c $CLIENTS --value-size $DATASIZE -r $KEYSPACE -P $pipe --duration $DURATION --quiet --json json/$tag.json" > "$OUT/raw/$tag.cmd"
  local s0 w0 busy
  s0="$(server_ticks)"; w0="$(now_ticks)"
  /usr/bin/time -f '%U %S' -o "$OUT/raw/$tag.time" \
    taskset -c "$CLIENT_CPU" "$KLEIN_BENCH" -p "$PORT" --mix "$test" -c "$CLIENTS" \
      --value-size "$DATASIZE" -r "$KEYSPACE" -P "$pipe" --duration "$DURATION" --quiet \
      --json "$OUT/json/$tag.json" > "$OUT/raw/$tag.txt"
  busy="$(busy_pct "$s0" "$w0")"
  python3 - "$rep" "$pipe" "$test" "$OUT/json/$tag.json" "$(cat "$OUT/raw/$tag.time")" "$(cut -d' ' -f1 /proc/loadavg)" "$(server_calls "$test")" "$busy" >> "$CSV" <<'EOF'
import json, sys
rep, pipe, test, path, times, load, calls, busy = sys.argv[1:]
r = json.load(open(path))["results"]
n = r["requests"]
cpu = sum(float(x) for x in times.split())
lat = r["latency_us"]
print(f"{rep},{pipe},{test},klein-bench,{r['throughput_ops_s']:.0f},{lat['p50'] / 1000:.3f},"
      f"{lat['p99'] / 1000:.3f},{lat['max'] / 1000:.3f},{n},{calls},{cpu:.2f},{cpu * 1e6 / n:.2f},"
      f"{r['cpu']['us_per_request']:.2f},{busy},{load}")
EOF
}

for rep in $(seq 1 "$REPEATS"); do
  for pipe in $PIPELINES; do
    for test in $TESTS; do
      echo "[$(date +%T)] rep $rep P=$pipe $test" >&2
      if (( rep % 2 )); then run_rb "$rep" "$test" "$pipe"; run_kb "$rep" "$test" "$pipe"
      else run_kb "$rep" "$test" "$pipe"; run_rb "$rep" "$test" "$pipe"; fi
    done
  done
done
echo "load after: $(cat /proc/loadavg)" >> "$OUT/machine.txt"

python3 - "$CSV" > "$OUT/table.md" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
keys = sorted({(int(r["pipeline"]), r["test"], r["tool"]) for r in rows})
def cell(values, fmt):
    values = sorted(float(v) for v in values if v not in ("", None))
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} [{fmt.format(values[0])}..{fmt.format(values[-1])}]"
print("| P | test | tool | ops/s | p50 ms | p99 ms | max ms | tool CPU us/op (process) | klein-bench self-reported us/op | redis-server busy % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for pipe, test, tool in keys:
    sel = [r for r in rows if (int(r["pipeline"]), r["test"], r["tool"]) == (pipe, test, tool)]
    col = lambda name, fmt: cell([r[name] for r in sel], fmt)
    print(f"| {pipe} | {test} | {tool} | {col('ops_per_s', '{:.0f}')} | {col('p50_ms', '{:.3f}')} | "
          f"{col('p99_ms', '{:.3f}')} | {col('max_ms', '{:.2f}')} | {col('cpu_us_per_op', '{:.2f}')} | "
          f"{col('self_cpu_us_per_op', '{:.2f}')} | {col('server_busy_pct', '{:.0f}')} |")
EOF
cat "$OUT/table.md"
