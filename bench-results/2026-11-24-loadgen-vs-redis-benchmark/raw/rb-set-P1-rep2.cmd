redis-benchmark -p 45673 -t set -c 50 -d 64 -r 100000 -P 1 -n 403225 --precision 3 --csv
