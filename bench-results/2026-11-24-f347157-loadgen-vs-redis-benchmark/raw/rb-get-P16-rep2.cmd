redis-benchmark -p 58323 -t get -c 50 -d 64 -r 100000 -P 16 -n 2522068 --precision 3 --csv
