#!/usr/bin/env bash
# The durable log on this machine's real disk, with fio's fdatasync baseline in the same run.
# Usage: perf/log_bench.sh [SCRATCH_DIR]   (default: ./log-bench-scratch; must be on the disk
# under test, not tmpfs). Prints machine facts, quietness, fio before/after, and the
# klein-log-bench tables (saturation and one-record-at-a-time). Everything it creates under
# SCRATCH_DIR is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-./log-bench-scratch}"
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"
trap 'rm -rf "$scratch/fio" "$scratch"/klein-log-bench-*' EXIT
command -v fio >/dev/null || { echo "fio missing: apt-get install -y fio" >&2; exit 1; }
: "${DURATION:=5}" "${WARMUP:=1}"

echo "## machine"
echo "commit $(git rev-parse --short HEAD); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); \
family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') \
model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '); nproc $(nproc); \
kernel $(uname -r)"
echo "filesystem: $(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$scratch")"
dev=$(basename "$(findmnt -n -o SOURCE -T "$scratch")")
echo "disk $dev: write_cache $(cat /sys/block/"$dev"/queue/write_cache 2>/dev/null), \
fua $(cat /sys/block/"$dev"/queue/fua 2>/dev/null), \
scheduler $(cat /sys/block/"$dev"/queue/scheduler 2>/dev/null)"

quiet() { echo "quietness ($1): $(cut -d' ' -f1-3 /proc/loadavg) load;" \
  "top: $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | tr -s ' ' | tr '\n' ';')"; }

fio_baseline() {
  mkdir -p "$scratch/fio"
  fio --name=fdatasync --directory="$scratch/fio" --rw=write --bs=4k --ioengine=io_uring \
    --iodepth=1 --fdatasync=1 --overwrite=1 --size=256m --runtime=10 --time_based \
    --output-format=json > "$scratch/fio/out.json"
  python3 - "$scratch/fio/out.json" "$1" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
sync = job["sync"]["lat_ns"]["percentile"]
print(f"fio 4k overwrite + fdatasync, io_uring QD1 ({sys.argv[2]}): "
      f"{job['write']['iops']:.0f} IOPS; fdatasync p50 {sync['50.000000']/1000:.0f} us, "
      f"p99 {sync['99.000000']/1000:.0f} us")
PY
  rm -rf "$scratch/fio"
}

cargo build --release --quiet --bin klein-log-bench
bench=target/release/klein-log-bench
quiet before
fio_baseline before
echo
echo "## saturation (staging kept full), ${DURATION} s after ${WARMUP} s warm-up"
"$bench" --dir "$scratch" --duration-seconds "$DURATION" --warmup-seconds "$WARMUP"
echo
echo "## one record in flight per log (commit latency of a lone write)"
"$bench" --dir "$scratch" --duration-seconds "$DURATION" --warmup-seconds "$WARMUP" --one-at-a-time
echo
quiet after
fio_baseline after
