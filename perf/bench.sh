#!/usr/bin/env bash
# End-to-end benchmark: the same klein-bench scenarios against Klein (single node, durable),
# a durable 3-node Klein cluster on loopback, Redis without persistence and Redis with
# `appendonly yes appendfsync always` (and, with ETCD=1, a 3-member etcd through
# ../shared/peers/etcd.sh, which has its own Put load generator: etcd speaks no RESP).
# ../shared/PERFORMANCE.md sections 5 and 6 give the scenarios, targets and method.
#
# Scenarios (64 B values, keys `key:` + 12 digits = 16 B, KEYSPACE uniform keys, CLIENTS conns):
#   W1 SET, CLIENTS clients, P=1 (closed loop)     W2 SET, CLIENTS clients, P=16
#   W3 SET, 1 client, P=1 (p50/p99)                 R1 GET, CLIENTS clients, P=1 (after --prefill)
#   R2 GET, CLIENTS clients, P=16                   M1 GET:80,SET:20 open loop at M1_FRACTION of
#                                                      the same system's W1 in the same repetition
# Each system is started fresh (empty data dirs) once per repetition, runs every scenario, and is
# stopped; the order of the systems rotates between repetitions so that drift in the machine
# (the disk here drifts 3-4x within an hour) is spread over all of them. A cell of the summary is
# the median of REPEATS runs, with [min..max].
#
# The 3-node cluster is driven through node 1 only: masters move to the lowest live node id and
# a write sent to a follower is answered -TRYAGAIN (no forwarding yet).
#
# Usage: perf/bench.sh [OUT_DIR]   (default bench-results/<date>-<shortsha>-e2e; never overwritten)
#   DURATION 5  WARMUP 1  REPEATS 3  CLIENTS 50  DATASIZE 64  KEYSPACE 100000  M1_FRACTION 0.5
#   SYSTEMS "klein1 klein3 redis-none redis-aof"   SCENARIOS "W1 W2 W3 R1 R2 M1"
#   SERVER_CPU 1 (Klein single node, Redis)  CLUSTER_CPUS "1 0 1" (nodes 1 2 3)  CLIENT_CPU 0
#   MAX_SECONDS 1200: no new run starts after this (the summary says which runs are missing)
#   ETCD 0 (1: also run ../shared/peers/etcd.sh, 3 members, 1 and CLIENTS clients; it installs
#           etcd with apt and builds its Rust client with cargo: minutes more)
#   PEERS ../shared/peers   SCRATCH_ROOT /tmp (data dirs; removed at exit)
#   KLEIN target/release/klein   KLEIN_BENCH target/release/klein-bench
# Writes OUT_DIR/{meta.json,results.json,runs.csv,summary.md,throughput.svg,commands.txt},
# OUT_DIR/json/*.json and OUT_DIR/hgrm/*.hgrm (klein-bench), OUT_DIR/logs/ (server logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
: "${DURATION:=5}" "${WARMUP:=1}" "${REPEATS:=3}" "${CLIENTS:=50}" "${DATASIZE:=64}"
: "${KEYSPACE:=100000}" "${M1_FRACTION:=0.5}" "${SYSTEMS:=klein1 klein3 redis-none redis-aof}"
: "${SCENARIOS:=W1 W2 W3 R1 R2 M1}" "${SERVER_CPU:=1}" "${CLUSTER_CPUS:=1 0 1}" "${CLIENT_CPU:=0}"
: "${MAX_SECONDS:=1200}" "${ETCD:=0}" "${PEERS:=$ROOT/../shared/peers}"
: "${KLEIN:=$ROOT/target/release/klein}" "${KLEIN_BENCH:=$ROOT/target/release/klein-bench}"
SHA="$(git rev-parse --short HEAD)"
OUT="${1:-bench-results/$(date -u +%F)-$SHA-e2e}"
if [[ -e "$OUT" ]]; then echo "$OUT exists: results are never overwritten" >&2; exit 2; fi
[[ -x "$KLEIN" && -x "$KLEIN_BENCH" ]] \
  || { echo "build first: cargo build --release --bin klein --bin klein-bench" >&2; exit 2; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
  || { echo "needs redis-server and redis-cli (apt-get install redis-server)" >&2; exit 2; }
[[ -f "$PEERS/lib.sh" ]] || { echo "needs the peer scripts in $PEERS" >&2; exit 2; }
# shellcheck source=../../shared/peers/lib.sh
. "$PEERS/lib.sh"   # log, pp_init/pp_bg/pp_stop (PID-tracked processes, scratch dir), disk_probe
mkdir -p "$OUT/json" "$OUT/hgrm" "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
T0=$SECONDS
pp_init klein-bench   # scratch dir under SCRATCH_ROOT; the exit trap stops our PIDs, removes it
CMDS="$OUT/commands.txt"; : > "$CMDS"
CSV="$OUT/runs.csv"
echo "rep,system,scenario,ops_per_s,p50_us,p90_us,p99_us,p999_us,max_us,ok,failed,errors,server_cpu_us_per_op,client_cpu_us_per_op,late,dropped,loadavg1,exit" > "$CSV"

snapshot() { # label -> JSON object: load average and the top CPU consumers
  python3 - "$1" <<'EOF'
import json, subprocess, sys
top = subprocess.run(["top", "-bn1", "-o", "%CPU"], capture_output=True, text=True).stdout.splitlines()
print(json.dumps({"label": sys.argv[1], "loadavg": open("/proc/loadavg").read().split()[:3],
                  "top": [l for l in top[6:14]]}))
EOF
}
snapshot before > "$SCRATCH/quiet-before.json"
disk_probe before 2>&1 | tee "$SCRATCH/disk-before.txt" >&2 || true
log "load before: $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"

BASE=$(pick_port_base)   # BASE..BASE+99 free; peer ports of core k are +1000*k (cores 1: k=0)
SERVER_PIDS=()
run() { # record the exact command line (without our pp_bg wrapper), then run it
  if [[ $1 == pp_bg ]]; then echo "${*:2}" >> "$CMDS"; else echo "$*" >> "$CMDS"; fi
  "$@"
}

wait_set() { # port -> 0 once a SET is acknowledged (the node is master for the key)
  local i
  for i in $(seq 1 150); do
    [[ "$(redis-cli -p "$1" set bench:probe x 2>/dev/null)" == OK ]] && return 0
    sleep 0.1
  done
  log "port $1 never acknowledged a SET"; return 1
}

start_system() { # system rep -> sets PORT and SERVER_PIDS
  local sys=$1 rep=$2 dir="$SCRATCH/data-$1-$2" i cpus
  mkdir -p "$dir"; SERVER_PIDS=(); METRICS_PORTS=()
  case "$sys" in
    klein1)
      PORT=$((BASE + 1))
      run pp_bg taskset -c "$SERVER_CPU" "$KLEIN" server --listen "127.0.0.1:$PORT" \
        --data-dir "$dir/n1" --cores 1 --log-level warn \
        --metrics-listen "127.0.0.1:$((BASE + 41))" 2> "$OUT/logs/$sys-$rep.log"
      SERVER_PIDS=("$PP_LAST_PID"); METRICS_PORTS=("$((BASE + 41))"); wait_set "$PORT";;
    klein3)
      PORT=$((BASE + 11)); read -ra cpus <<< "$CLUSTER_CPUS"
      local cluster="1=127.0.0.1:$((BASE + 21)),2=127.0.0.1:$((BASE + 22)),3=127.0.0.1:$((BASE + 23))"
      for i in 1 2 3; do
        run pp_bg taskset -c "${cpus[$((i - 1))]}" "$KLEIN" server --node-id "$i" \
          --listen "127.0.0.1:$((BASE + 10 + i))" --peer-listen "127.0.0.1:$((BASE + 20 + i))" \
          --initial-cluster "$cluster" --data-dir "$dir/n$i" --cores 1 --log-level warn \
          --metrics-listen "127.0.0.1:$((BASE + 40 + i))" 2> "$OUT/logs/$sys-$rep-n$i.log"
        SERVER_PIDS+=("$PP_LAST_PID"); METRICS_PORTS+=("$((BASE + 40 + i))")
      done
      wait_set "$PORT"
      sleep 2   # masters settle on node 1 within about a second of start
      wait_set "$PORT";;
    redis-none|redis-aof)
      PORT=$((BASE + 31))
      local persist=(--save "" --appendonly no)
      [[ $sys == redis-aof ]] && persist=(--save "" --appendonly yes --appendfsync always)
      run pp_bg taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$PORT" \
        --dir "$dir" --daemonize no --logfile "$OUT/logs/$sys-$rep.log" "${persist[@]}"
      SERVER_PIDS=("$PP_LAST_PID"); wait_set "$PORT";;
    *) log "unknown system $sys"; return 1;;
  esac
}

stop_system() { # the PIDs we started, then their data
  pp_stop "${SERVER_PIDS[@]}"; SERVER_PIDS=(); rm -rf "$SCRATCH"/data-*
}

server_ticks() { # CPU time (user + system, in clock ticks) of every server process so far
  local p t=0
  for p in "${SERVER_PIDS[@]}"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# Klein's own counters summed over its nodes (GET /metrics): consensus messages, log writes
# (each O_DSYNC, so a device flush), batches proposed and the writes they carried. For redis
# (no metrics port) prints nothing.
klein_counters() {
  local port
  for port in "${METRICS_PORTS[@]}"; do
    curl -s --max-time 2 "http://127.0.0.1:$port/metrics" || true
  done | awk '/^klein_(messages_sent|log_writes|batches_proposed|writes_proposed|forwards_sent)_total/ {
      name = $1; sub(/\{.*/, "", name); sum[name] += $2 }
    END { printf "%d %d %d %d %d", sum["klein_messages_sent_total"], sum["klein_log_writes_total"],
          sum["klein_batches_proposed_total"], sum["klein_writes_proposed_total"],
          sum["klein_forwards_sent_total"] }'
}
METRICS_CSV="$OUT/klein-counters.csv"
echo "rep,system,scenario,requests,messages_per_op,log_writes_per_op,writes_per_batch,forwards" > "$METRICS_CSV"

declare -A W1_OPS
bench() { # rep system scenario
  local rep=$1 sys=$2 sc=$3 tag="$2-$3-rep$1" args=() rc=0 t0
  case "$sc" in
    W1) args=(--mix set -c "$CLIENTS" -P 1);;
    W2) args=(--mix set -c "$CLIENTS" -P 16);;
    W3) args=(--mix set -c 1 -P 1);;
    R1) args=(--mix get -c "$CLIENTS" -P 1 --prefill);;
    R2) args=(--mix get -c "$CLIENTS" -P 16);;
    M1) local w1="${W1_OPS[$sys-$rep]:-}"
        [[ -n "$w1" ]] || { log "M1 needs W1 first: skipped for $sys"; return 0; }
        args=(--mix get:80,set:20 -c "$CLIENTS" --open-loop-rate
              "$(python3 -c "print(max(1, round($w1 * $M1_FRACTION)))")");;
  esac
  if (( SECONDS - T0 > MAX_SECONDS )); then log "MAX_SECONDS reached: $tag not run"; return 0; fi
  t0=$(server_ticks)
  local c0=""; (( ${#METRICS_PORTS[@]} )) && c0=$(klein_counters)
  run timeout $((DURATION + WARMUP + 120)) "$KLEIN_BENCH" -p "$PORT" "${args[@]}" \
    --value-size "$DATASIZE" -r "$KEYSPACE" --duration "$DURATION" --warmup "$WARMUP" \
    --cpus "$CLIENT_CPU" --quiet --json "$OUT/json/$tag.json" --hgrm "$OUT/hgrm/$tag.hgrm" \
    > "$OUT/logs/$tag.txt" 2>&1 || rc=$?
  local ticks=$(( $(server_ticks) - t0 ))
  if [[ -n "$c0" && -f "$OUT/json/$tag.json" ]]; then
    # Per operation over the whole run (warm-up included: the counters cannot split it).
    python3 - "$rep" "$sys" "$sc" "$OUT/json/$tag.json" "$c0" "$(klein_counters)" \
        "$((DURATION + WARMUP))" >> "$METRICS_CSV" <<'EOF'
import json, sys
rep, sysname, sc, path, before, after, wall = sys.argv[1:]
r = json.load(open(path))["results"]
d = [b - a for a, b in zip(map(int, before.split()), map(int, after.split()))]
ops = max(1.0, r["throughput_ops_s"] * float(wall))
print(f"{rep},{sysname},{sc},{ops:.0f},{d[0] / ops:.3f},{d[1] / ops:.3f},"
      f"{(d[3] / d[2]) if d[2] else 0:.1f},{d[4]}")
EOF
  fi
  python3 - "$rep" "$sys" "$sc" "$OUT/json/$tag.json" "$ticks" "$(getconf CLK_TCK)" \
      "$(cut -d' ' -f1 /proc/loadavg)" "$rc" "$((DURATION + WARMUP))" >> "$CSV" <<'EOF'
import csv, json, sys
rep, sysname, sc, path, ticks, hz, load, rc, wall = sys.argv[1:]
w = csv.writer(sys.stdout, lineterminator="\n")
try:
    r = json.load(open(path))["results"]
except (OSError, ValueError):
    w.writerow([rep, sysname, sc] + [""] * 13 + [load, rc]); sys.exit()
lat, n = r["latency_us"], max(1, r["requests"])
e = r["errors"]
errs = ";".join(f"{k}:{v}" for k, v in (e.items() if isinstance(e, dict) else (x if isinstance(x, (list, tuple)) else (x, "") for x in e)))
# server CPU covers warm-up + prefill too: per op over the measured window's rate x wall time
ops_wall = r["throughput_ops_s"] * float(wall)
scpu = int(ticks) / int(hz) * 1e6 / ops_wall if ops_wall else ""
ol = r.get("open_loop") or {}
w.writerow([rep, sysname, sc, f"{r['throughput_ops_s']:.0f}", f"{lat['p50']:.1f}", f"{lat['p90']:.1f}",
            f"{lat['p99']:.1f}", f"{lat['p99.9']:.1f}", f"{lat['max']:.1f}", r["ok"], r["failed"], errs,
            scpu if scpu == "" else round(scpu, 2), f"{r['cpu']['us_per_request']:.2f}",
            ol.get("late_sends", ""), ol.get("dropped_sends", ""), load, rc])
EOF
  if [[ $sc == W1 && -f "$OUT/json/$tag.json" ]]; then
    W1_OPS[$sys-$rep]=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results']['throughput_ops_s'])" "$OUT/json/$tag.json")
  fi
  log "  $tag: $(tail -1 "$CSV" | cut -d, -f4,5,7 | awk -F, '{printf "%s ops/s p50 %s us p99 %s us", $1, $2, $3}')$( ((rc)) && echo " (exit $rc)")"
}

read -ra SYS <<< "$SYSTEMS"; read -ra SCS <<< "$SCENARIOS"
NRUNS=$(( REPEATS * ${#SYS[@]} * ${#SCS[@]} )); DONE=0
for rep in $(seq 1 "$REPEATS"); do
  for k in $(seq 0 $(( ${#SYS[@]} - 1 ))); do
    sys="${SYS[$(( (k + rep - 1) % ${#SYS[@]} ))]}"   # rotate the order each repetition
    if (( SECONDS - T0 > MAX_SECONDS )); then log "MAX_SECONDS reached: rep $rep $sys not run"; continue; fi
    log "rep $rep/$REPEATS: $sys (runs done $DONE/$NRUNS, $((SECONDS - T0)) s elapsed)"
    if ! start_system "$sys" "$rep"; then log "$sys did not start: skipped"; stop_system; continue; fi
    for sc in "${SCS[@]}"; do bench "$rep" "$sys" "$sc"; DONE=$((DONE + 1)); done
    stop_system
  done
done

ETCD_NOTE="not run (ETCD=0): etcd speaks no RESP; ../shared/peers/etcd.sh has its own Put generator"
if [[ $ETCD == 1 ]]; then
  log "etcd: ../shared/peers/etcd.sh, 3 members, concurrency 1 and $CLIENTS"
  echo "CLUSTERS=3 CONCURRENCY='1 $CLIENTS' CHECK_PERF= LOADGEN=rust DURATION=$DURATION REPEATS=$REPEATS RAW_DIR=$OUT/etcd-raw $PEERS/etcd.sh" >> "$CMDS"
  if CLUSTERS=3 CONCURRENCY="1 $CLIENTS" CHECK_PERF="" LOADGEN=rust DURATION="$DURATION" \
     REPEATS="$REPEATS" RAW_DIR="$OUT/etcd-raw" SCRATCH_ROOT="$SCRATCH" "$PEERS/etcd.sh" \
     > "$OUT/etcd.md" 2> "$OUT/logs/etcd.log"; then
    ETCD_NOTE="run: see etcd.md (Put, closed loop, its own generator; not comparable with RESP runs one to one)"
  else ETCD_NOTE="failed: see logs/etcd.log"; fi
fi

disk_probe after 2>&1 | tee "$SCRATCH/disk-after.txt" >&2 || true
snapshot after > "$SCRATCH/quiet-after.json"
log "load after: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - T0)) s in all"

# ---------------------------------------------------------------- meta.json
python3 - "$OUT" "$SCRATCH" <<EOF
import json, os, subprocess, sys
out, scratch = sys.argv[1:]
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
dev = sh("df --output=source '$SCRATCH' | tail -1")
blk = os.path.basename(dev).rstrip("0123456789") if dev.startswith("/dev/") else ""
q = lambda f: sh(f"cat /sys/block/{blk}/queue/{f} 2>/dev/null") if blk else ""
meta = {
  "date_utc": sh("date -u +%FT%TZ"),
  "commit": sh("git rev-parse HEAD"), "dirty": sh("git status --porcelain -- src Cargo.toml Cargo.lock") != "",
  "machine": {"nproc": sh("nproc"), "kernel": sh("uname -r"),
              "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip(),
              "mem": sh("free -g | awk '/Mem:/{print \$2\" GiB\"}'"),
              "disk": {"device": dev, "fs": sh("df -T '$SCRATCH' | awk 'NR==2{print \$2}'"),
                       "scheduler": q("scheduler"), "write_cache": q("write_cache"), "fua": q("fua"),
                       "logical_block_size": q("logical_block_size"), "physical_block_size": q("physical_block_size")},
              "cpuidle_driver": sh("cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null"),
              "guest_halt_poll_ns": sh("cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null"),
              "ulimit_l": sh("ulimit -l")},
  "versions": {"rustc": sh("rustc --version"), "klein": sh("'$KLEIN' --version"),
               "klein_bench": sh("'$KLEIN_BENCH' --version"), "redis": sh("redis-server --version")},
  "config": {"duration_s": $DURATION, "warmup_s": $WARMUP, "repeats": $REPEATS, "clients": $CLIENTS,
             "value_size": $DATASIZE, "keyspace": $KEYSPACE, "key_dist": "uniform", "key_size": 16,
             "m1_fraction_of_w1": $M1_FRACTION, "systems": "$SYSTEMS".split(), "scenarios": "$SCENARIOS".split(),
             "klein": "durable: every acknowledged write fdatasync'ed/O_DSYNC; --cores 1 per process",
             "klein3": "3 nodes (RF=3) on loopback, majority = leader + 1 durable; driven through node 1 (the master; followers would forward to it)",
             "redis-none": "--save '' --appendonly no", "redis-aof": "--save '' --appendonly yes --appendfsync always",
             "etcd": "$ETCD_NOTE", "max_seconds": $MAX_SECONDS},
  "placement": {"klein-bench": "CPU $CLIENT_CPU (--cpus), 1 thread", "klein1": "CPU $SERVER_CPU (taskset)",
                "redis": "CPU $SERVER_CPU (taskset)",
                "klein3": dict(zip(["node1 (master)", "node2", "node3"], ["CPU " + c for c in "$CLUSTER_CPUS".split()]))},
  "commands": open(os.path.join(out, "commands.txt")).read().splitlines(),
  "quietness": {"before": json.load(open(os.path.join(scratch, "quiet-before.json"))),
                "after": json.load(open(os.path.join(scratch, "quiet-after.json"))),
                "disk_probe_before": open(os.path.join(scratch, "disk-before.txt")).read().strip(),
                "disk_probe_after": open(os.path.join(scratch, "disk-after.txt")).read().strip()},
  "elapsed_s": $((SECONDS - T0)),
}
json.dump(meta, open(os.path.join(out, "meta.json"), "w"), indent=1)
EOF

# ---------------------------------------------------------------- results.json, summary.md, svg
python3 - "$OUT" <<'EOF'
import csv, json, os, statistics, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
meta = json.load(open(os.path.join(out, "meta.json")))
systems, scenarios = meta["config"]["systems"], meta["config"]["scenarios"]
metrics = ["ops_per_s", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "server_cpu_us_per_op",
           "client_cpu_us_per_op", "failed", "late", "dropped"]
res = {}
for s in systems:
    for sc in scenarios:
        sel = [r for r in rows if r["system"] == s and r["scenario"] == sc]
        if not sel: continue
        cell = {"runs": len(sel)}
        for m in metrics:
            v = sorted(float(r[m]) for r in sel if r[m] not in ("", None))
            if v: cell[m] = {"median": statistics.median(v), "min": v[0], "max": v[-1]}
        res.setdefault(s, {})[sc] = cell
json.dump({"latency_unit": "us", "median_of": meta["config"]["repeats"],
           "co_corrected": {"M1": "open loop: latency from the intended send time",
                            "other": "closed loop: latency from the actual send (not CO-corrected)"},
           "results": res, "runs": rows}, open(os.path.join(out, "results.json"), "w"), indent=1)

def med(s, sc, m="ops_per_s"):
    return res.get(s, {}).get(sc, {}).get(m, {}).get("median")
def cell(s, sc, m="ops_per_s", fmt="{:,.0f}"):
    c = res.get(s, {}).get(sc, {}).get(m)
    return "-" if not c else f"{fmt.format(c['median'])} [{fmt.format(c['min'])}..{fmt.format(c['max'])}]"
def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}x"
ref = {"W": "redis-aof", "R": "redis-none", "M": "redis-aof"}
L = []
q = meta["quietness"]
L.append(f"# End-to-end benchmark {meta['date_utc']} commit {meta['commit'][:7]}{' (dirty)' if meta['dirty'] else ''}\n")
L.append(f"Machine: {meta['machine']['nproc']} vCPU {meta['machine']['cpu_model']}, kernel {meta['machine']['kernel']}, "
         f"disk {meta['machine']['disk']['device']} ({meta['machine']['disk']['fs']}, write cache {meta['machine']['disk']['write_cache']}). "
         f"Load average before {' '.join(q['before']['loadavg'])}, after {' '.join(q['after']['loadavg'])}. "
         f"{q['disk_probe_before']}; {q['disk_probe_after']}.\n")
c = meta["config"]
L.append(f"Each cell: median of {c['repeats']} runs of {c['duration_s']} s (+{c['warmup_s']} s warm-up) [min..max]; "
         f"{c['clients']} clients unless 1-client; {c['value_size']} B values, {c['keyspace']} uniform keys. "
         f"Placement: {json.dumps(meta['placement'])}. klein3 is driven through node 1 (the master). "
         f"Ratios: writes and M1 against Redis appendfsync always, reads against Redis without persistence. "
         f"etcd: {c['etcd']}.\n")
labels = {"W1": "W1 SET c=50 P=1 ops/s", "W2": "W2 SET c=50 P=16 ops/s", "W3": "W3 SET 1 client ops/s",
          "R1": "R1 GET c=50 P=1 ops/s", "R2": "R2 GET c=50 P=16 ops/s", "M1": "M1 80/20 open loop ops/s"}
L.append("| scenario | " + " | ".join(systems) + " | klein1 / ref | klein3 / ref |")
L.append("|---|" + "---|" * (len(systems) + 2))
for sc in scenarios:
    r = ref[sc[0]]
    L.append(f"| {labels.get(sc, sc)} | " + " | ".join(cell(s, sc) for s in systems) +
             f" | {ratio(med('klein1', sc), med(r, sc))} | {ratio(med('klein3', sc), med(r, sc))} |")
    if sc in ("W3", "M1", "R1", "W1"):
        for m, name in (("p50_us", "p50 us"), ("p99_us", "p99 us")) + ((("p999_us", "p99.9 us"),) if sc == "M1" else ()):
            L.append(f"| {sc} {name} | " + " | ".join(cell(s, sc, m, "{:,.0f}") for s in systems) +
                     f" | {ratio(med('klein1', sc, m), med(r, sc, m))} | {ratio(med('klein3', sc, m), med(r, sc, m))} |")
L.append("| server CPU us/op W1 (all server processes) | " + " | ".join(cell(s, "W1", "server_cpu_us_per_op", "{:.1f}") for s in systems) + " | | |")
L.append("| server CPU us/op W2 | " + " | ".join(cell(s, "W2", "server_cpu_us_per_op", "{:.1f}") for s in systems) + " | | |")
fails = [r for r in rows if r["failed"] not in ("", "0") or r["exit"] != "0"]
L.append("\n## Against ../shared/PERFORMANCE.md section 5 (medians)\n")
def chk(name, v, ok):
    return f"- {name}: {v} -> {'met' if ok else 'MISSED'}"
for k in ("klein1", "klein3"):
    if k not in res: continue
    w1, w2, r1 = med(k, "W1"), med(k, "W2"), med(k, "R1")
    a1, rn1 = med("redis-aof", "W1"), med("redis-none", "R1")
    m99, m999 = med(k, "M1", "p99_us"), med(k, "M1", "p999_us")
    L.append(f"**{k}**")
    if w1 is not None: L.append(chk("W1 >= 30K SET/s", f"{w1:,.0f}", w1 >= 30000))
    if w1 is not None and a1: L.append(chk("W1 >= 0.9x Redis appendfsync always", f"{w1 / a1:.2f}x", w1 >= 0.9 * a1))
    if w2 is not None: L.append(chk("W2 >= 150K SET/s", f"{w2:,.0f}", w2 >= 150000))
    if r1 is not None and rn1: L.append(chk("R1 >= 0.9x Redis no persistence", f"{r1 / rn1:.2f}x", r1 >= 0.9 * rn1))
    if m99 is not None: L.append(chk("M1 p99 <= 2 ms / p99.9 <= 5 ms", f"{m99 / 1000:.2f} / {m999 / 1000:.2f} ms", m99 <= 2000 and m999 <= 5000))
    L.append("")
L.append(f"Runs with failed requests or a non-zero exit: {len(fails)}" + "".join(
    f"\n- rep {r['rep']} {r['system']} {r['scenario']}: failed {r['failed']} errors {r['errors']} exit {r['exit']}" for r in fails))
kc_path = os.path.join(out, "klein-counters.csv")
kc = list(csv.DictReader(open(kc_path))) if os.path.exists(kc_path) else []
if kc:
    L.append("\n## Klein's counters per operation (E2; medians over repetitions, warm-up included)\n")
    L.append("| system | scenario | consensus messages/op | log writes (flushes)/op | writes per batch | forwards |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for s in ("klein1", "klein3"):
        for sc in scenarios:
            sel = [r for r in kc if r["system"] == s and r["scenario"] == sc]
            if not sel: continue
            m = lambda f: statistics.median(float(r[f]) for r in sel)
            L.append(f"| {s} | {sc} | {m('messages_per_op'):.3f} | {m('log_writes_per_op'):.3f} | {m('writes_per_batch'):.1f} | {m('forwards'):.0f} |")
    L.append("\nTargets at saturation (W2): consensus messages/op <= 0.1, flushes/op <= 0.1.")
missing = [f"{s} {sc}" for s in systems for sc in scenarios if res.get(s, {}).get(sc, {}).get("runs", 0) < c["repeats"]]
if missing: L.append("\nIncomplete (fewer runs than repeats): " + ", ".join(missing))
L.append("\nFiles: meta.json (machine, placement, exact commands, load before/after), results.json, runs.csv, "
         "json/ and hgrm/ (klein-bench), logs/, throughput.svg.")
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")

# grouped bar chart of the throughput medians
bars = [sc for sc in scenarios if sc != "W3"]
colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
vmax = max([med(s, sc) or 0 for s in systems for sc in bars] + [1])
W, H, left, top, bot = 760, 360, 60, 30, 60
gw = (W - left - 20) / len(bars); bw = gw * 0.8 / len(systems)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<text x="{left}" y="18" font-size="13">ops/s, median of {c["repeats"]} (commit {meta["commit"][:7]}, {meta["date_utc"][:10]}, noisy machine)</text>']
for i in range(5):
    y = top + (H - top - bot) * i / 4
    svg.append(f'<line x1="{left}" x2="{W - 20}" y1="{y:.0f}" y2="{y:.0f}" stroke="#ddd"/>'
               f'<text x="{left - 4}" y="{y + 4:.0f}" text-anchor="end">{vmax * (4 - i) / 4 / 1000:,.0f}K</text>')
for j, sc in enumerate(bars):
    x0 = left + j * gw + gw * 0.1
    for i, s in enumerate(systems):
        v = med(s, sc) or 0; h = (H - top - bot) * v / vmax
        svg.append(f'<rect x="{x0 + i * bw:.1f}" y="{H - bot - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="{colors[i % 5]}"><title>{s} {sc}: {v:,.0f}</title></rect>')
    svg.append(f'<text x="{x0 + gw * 0.4:.0f}" y="{H - bot + 14}" text-anchor="middle">{sc}</text>')
for i, s in enumerate(systems):
    svg.append(f'<rect x="{left + i * 150}" y="{H - 22}" width="10" height="10" fill="{colors[i % 5]}"/><text x="{left + i * 150 + 14}" y="{H - 13}">{s}</text>')
svg.append("</svg>")
open(os.path.join(out, "throughput.svg"), "w").write("\n".join(svg) + "\n")
EOF
cat "$OUT/summary.md"
