redis-benchmark -p 58323 -t set -c 50 -d 64 -r 100000 -P 1 -n 396825 --precision 3 --csv
