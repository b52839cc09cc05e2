#!/usr/bin/env bash
# A long fuzz campaign of the peer wire format: frame checks and the stream reader
# (tests/fuzz_wire.rs).
# Usage: perf/fuzz_wire.sh [SECONDS]   (default 600: half per target, one after the other; it
# stops by itself, and a watchdog ends it if the build and both halves overrun by 10 minutes).
# KLEIN_FUZZ_SEED picks the generator (default: from the clock, printed, so a run can be
# repeated); KLEIN_FUZZ_SAVE=1 adds inputs with a new outcome signature to tests/fuzz-corpus/.
# Prints iterations/s per target. A failing input is saved under target/fuzz-crashes/ with the
# command that replays it, and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
total="${1:-600}"
[[ "$total" =~ ^[0-9]+$ ]] && (( total >= 2 )) || { echo "SECONDS must be >= 2" >&2; exit 2; }
per_target=$(( total / 2 ))
seed="${KLEIN_FUZZ_SEED:-$(date +%s)}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "## fuzz_wire: ${per_target} s per target, seed ${seed}, commit $(git rev-parse --short HEAD)," \
  "nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
nice -n 10 cargo test --release --test fuzz_wire --no-run --quiet
status=0
KLEIN_FUZZ_SECONDS="$per_target" KLEIN_FUZZ_SEED="$seed" \
  timeout $(( total + 600 )) nice -n 10 \
  cargo test --release --quiet --test fuzz_wire explores -- --nocapture --test-threads=1 \
  > "$log" 2>&1 || status=$?
grep -o 'fuzz-wire [a-z]*: .*' "$log" || true
if (( status != 0 )); then
  tail -n 40 "$log"
  echo "## FAILED (exit $status): replay the inputs above with the printed command" >&2
fi
exit "$status"
