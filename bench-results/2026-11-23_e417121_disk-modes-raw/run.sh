#!/usr/bin/env bash
# One measurement session: machine info, fio baselines before, klein-disk-modes, fio after,
# perf stat diagnostics; quietness snapshots before each step.
set -euo pipefail
OUT=/work/disk-modes-run/out; rm -rf "$OUT"; mkdir -p "$OUT" /work/tmp-disk-modes
SCRATCH=/work/tmp-disk-modes
BUILD=/work/disk-modes-build
busy_pct() { # machine busy % over 3 s
  read -r _ u n sy i w irq si st _ < /proc/stat; t1=$((u+n+sy+i+w+irq+si+st)); i1=$((i+w))
  sleep 3
  read -r _ u n sy i w irq si st _ < /proc/stat; t2=$((u+n+sy+i+w+irq+si+st)); i2=$((i+w))
  echo $(( 100 - 100 * (i2 - i1) / (t2 - t1) ))
}
wait_quiet() { # label: waits (up to 15 min) until the machine is < 5% busy over 3 s
  local waited=0 b
  while b=$(busy_pct); [ "$b" -ge 5 ]; do
    [ $waited -ge 900 ] && { echo "== $1: still ${b}% busy after ${waited}s, going on" >> "$OUT/quietness.txt"; return; }
    sleep 10; waited=$((waited + 13))
  done
  echo "== $1: machine ${b}% busy over 3 s after waiting ${waited}s" >> "$OUT/quietness.txt"
}
snap() { { echo "== $1 $(date -u +%FT%TZ)"; uptime; ps -eo pcpu,pid,etime,comm --sort=-pcpu | head -6; } >> "$OUT/quietness.txt"; }
quiet() { wait_quiet "$1"; { echo "== $1 $(date -u +%FT%TZ)"; uptime; ps -eo pcpu,pid,etime,comm --sort=-pcpu | head -6; echo "-- top, 1 s sample:"; top -bn2 -d1 | awk "/^top -/{i++} i==2" | sed -n "3p;8,13p"; } >> "$OUT/quietness.txt"; }
FIO_TESTS=(
  "4k-overwrite-fdatasync-uring|--rw=write --bs=4k --ioengine=io_uring --iodepth=1 --fdatasync=1 --overwrite=1 --size=256m"
  "4k-overwrite-fdatasync-sync|--rw=write --bs=4k --ioengine=sync --fdatasync=1 --overwrite=1 --size=256m"
  "4k-append-odirect+fdatasync-uring|--rw=write --bs=4k --ioengine=io_uring --iodepth=1 --direct=1 --fdatasync=1 --fallocate=none --file_append=1 --size=4g"
  "64k-append-odirect+fdatasync-uring|--rw=write --bs=64k --ioengine=io_uring --iodepth=1 --direct=1 --fdatasync=1 --fallocate=none --file_append=1 --size=8g"
)
run_fio() { # phase
  for t in "${FIO_TESTS[@]}"; do
    name="${t%%|*}"; args="${t#*|}"
    d="$SCRATCH/fio"; rm -rf "$d"; mkdir -p "$d"
    echo "fio $name ($1)" >&2
    # shellcheck disable=SC2086
    echo "fio --name=pp --directory=$d $args --runtime=10 --time_based --lat_percentiles=1 --output-format=json" >> "$OUT/commands.txt"
    fio --name=pp --directory="$d" $args --runtime=10 --time_based --lat_percentiles=1 \
        --output-format=json > "$OUT/fio-$name-$1.json"
    rm -rf "$d"; sync
  done
}
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C /work/main rev-parse HEAD) (+ this task's uncommitted files, built in $BUILD)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '))"
  echo "nproc: $(nproc)"; echo "kernel: $(uname -r)"
  lsblk -o NAME,SIZE,LOG-SEC,PHY-SEC,ROTA,SCHED /dev/vda
  echo "write_cache: $(cat /sys/block/vda/queue/write_cache)  fua: $(cat /sys/block/vda/queue/fua)"
  findmnt -T "$SCRATCH" -o TARGET,SOURCE,FSTYPE,OPTIONS
  echo "ulimit -l: $(ulimit -l)"; echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver)"
  echo "rustc: $(rustc --version)"; echo "fio: $(fio --version)"
} > "$OUT/machine.txt"
mkdir -p "$SCRATCH"
quiet "before fio (before)"; run_fio before
quiet "before klein-disk-modes"
CMD="cargo run --release --bin klein-disk-modes -- --dir $SCRATCH --count 2000 --sizes 4096,65536 --repeats 5 --json $OUT/disk-modes.json"
echo "(cd $BUILD && $CMD)" >> "$OUT/commands.txt"
(cd "$BUILD" && $CMD > "$OUT/disk-modes.md" 2> "$OUT/disk-modes.err")
snap "right after klein-disk-modes (no wait)"
quiet "before fio (after)"; run_fio after
quiet "before perf stat"
for m in uring-linked uring-dsync uring-write-then-fdatasync glommio-dma glommio-dma-dsync sync-pwrite-fdatasync; do
  c="perf stat -e context-switches,cpu-migrations,task-clock,io_uring:io_uring_submit_req,io_uring:io_uring_queue_async_work -- $BUILD/target/release/klein-disk-modes --dir $SCRATCH --count 1000 --repeats 1 --sizes 4096 --modes $m"
  echo "$c" >> "$OUT/commands.txt"
  $c > /dev/null 2> "$OUT/perf-$m.txt"
done
quiet "end" 
ls "$SCRATCH"; rmdir "$SCRATCH"
echo done >&2
