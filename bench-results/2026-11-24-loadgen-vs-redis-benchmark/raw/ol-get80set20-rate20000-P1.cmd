target/release/klein-bench -p 45421 --mix get:80,set:20 -c 50 --value-size 64 -r 100000 -P 1 --open-loop-rate 20000 --duration 10 --warmup 2 --quiet --json bench-results/2026-11-24-loadgen-vs-redis-benchmark/json/ol-get80set20-rate20000-P1.json
load 5.60 6.15 5.48
