#!/usr/bin/env bash
# A long klein-sim campaign: SEEDS seeds (default 50000) from a random start, in chunks of
# CHUNK (default 500) over JOBS processes (default: every core). It stops by itself; progress
# is one line per finished chunk. A failing chunk's log (with the replay command klein-sim
# prints) is kept under target/sim-campaign/<start>/; the script exits non-zero if any failed.
# Usage: perf/sim_campaign.sh [SEEDS] [JOBS]   (KLEIN_SIM_START fixes the start seed;
# KLEIN_SIM_PLANT=NAME runs the campaign with a planted bug, expecting failures).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-50000}"
jobs="${2:-$(nproc)}"
chunk="${CHUNK:-500}"
[[ "$seeds" =~ ^[0-9]+$ && "$jobs" =~ ^[0-9]+$ ]] && (( seeds > 0 && jobs > 0 )) \
  || { echo "usage: perf/sim_campaign.sh [SEEDS] [JOBS]" >&2; exit 2; }
nice -n 10 cargo build --release --features sim --bin klein-sim --quiet
sim=target/release/klein-sim
start="${KLEIN_SIM_START:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
out="target/sim-campaign/$start"
mkdir -p "$out"
plant=()
[[ -n "${KLEIN_SIM_PLANT:-}" ]] && plant=(--plant "$KLEIN_SIM_PLANT")
chunks=$(( (seeds + chunk - 1) / chunk ))
echo "## sim campaign: $seeds seeds from $start, $chunks chunks of $chunk, $jobs processes," \
  "commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
began=$SECONDS
run_chunk() {
  local index=$1 first count log
  first=$(( start + index * chunk ))
  count=$(( seeds - index * chunk < chunk ? seeds - index * chunk : chunk ))
  log="$out/chunk-$index.log"
  if nice -n 10 "$sim" --seeds "$count" --seed "$first" "${plant[@]}" > "$log" 2>&1; then
    echo "chunk $index ok: $(tail -n 1 "$log")"
    rm -f "$log"
  else
    echo "chunk $index FAILED: $(grep -m1 '^replay:' "$log" || tail -n 1 "$log")"
  fi
}
export -f run_chunk
export start chunk seeds out sim
export KLEIN_SIM_PLANT="${KLEIN_SIM_PLANT:-}"
seq 0 $(( chunks - 1 )) | xargs -P "$jobs" -I{} bash -c \
  'plant=(); [[ -n "$KLEIN_SIM_PLANT" ]] && plant=(--plant "$KLEIN_SIM_PLANT"); run_chunk {}' \
  | tee "$out/progress.log" | {
    # A shell loop, not awk: mawk reads a pipe in blocks, which held every line back.
    done_chunks=0
    while IFS= read -r line; do
      done_chunks=$(( done_chunks + 1 ))
      printf '[%d/%d] %s\n' "$done_chunks" "$chunks" "$line"
    done
  }
failed=$(grep -c 'FAILED' "$out/progress.log" || true)
ops=$(grep -o ' ops=[0-9]*' "$out/progress.log" | awk -F= '{ s += $2 } END { print s + 0 }')
echo "## sim campaign: seeds=$seeds failed_chunks=$failed ops=${ops:-0}" \
  "seconds=$(( SECONDS - began )) logs=$out"
(( failed == 0 ))
