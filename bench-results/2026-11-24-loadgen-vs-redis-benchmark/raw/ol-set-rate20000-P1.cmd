target/release/klein-bench -p 45421 --mix set -c 50 --value-size 64 -r 100000 -P 1 --open-loop-rate 20000 --duration 10 --warmup 2 --quiet --json bench-results/2026-11-24-loadgen-vs-redis-benchmark/json/ol-set-rate20000-P1.json
load 5.34 6.12 5.46
