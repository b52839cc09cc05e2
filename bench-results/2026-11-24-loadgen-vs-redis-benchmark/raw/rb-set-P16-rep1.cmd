redis-benchmark -p 45673 -t set -c 50 -d 64 -r 100000 -P 16 -n 2183406 --precision 3 --csv
