redis-benchmark -p 58323 -t set -c 50 -d 64 -r 100000 -P 16 -n 2649006 --precision 3 --csv
