target/release/klein-bench -p 45421 --mix set -c 50 --value-size 64 -r 100000 -P 16 --open-loop-rate 100000 --duration 10 --warmup 2 --quiet --json bench-results/2026-11-24-loadgen-vs-redis-benchmark/json/ol-set-rate100000-P16.json
load 5.77 6.16 5.49
