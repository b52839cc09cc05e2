#!/usr/bin/env bash
set -euo pipefail
OUT=/work/disk-modes-run/out; d=/work/tmp-disk-modes/fio; mkdir -p $d
{ echo "== extra fio rerun $(date -u +%FT%TZ)"; uptime; ps -eo pcpu,pid,etime,comm --sort=-pcpu | head -4; top -bn2 -d1 | awk '/^top -/{i++} i==2' | sed -n 3p; } >> $OUT/quietness.txt
for t in "4k-overwrite-fdatasync-uring|--rw=write --bs=4k --ioengine=io_uring --iodepth=1 --fdatasync=1 --overwrite=1 --size=256m" "4k-overwrite-fdatasync-sync|--rw=write --bs=4k --ioengine=sync --fdatasync=1 --overwrite=1 --size=256m"; do
  name="${t%%|*}"; args="${t#*|}"; rm -rf $d; mkdir -p $d
  echo "fio --name=pp --directory=$d $args --runtime=10 --time_based --lat_percentiles=1 --output-format=json  # extra" >> $OUT/commands.txt
  fio --name=pp --directory=$d $args --runtime=10 --time_based --lat_percentiles=1 --output-format=json > $OUT/fio-$name-extra.json
  rm -rf $d; sync
done
{ echo "== after extra fio $(date -u +%FT%TZ)"; uptime; ps -eo pcpu,pid,etime,comm --sort=-pcpu | head -4; } >> $OUT/quietness.txt
rmdir /work/tmp-disk-modes
