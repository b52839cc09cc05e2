redis-benchmark -p 58323 -t get -c 50 -d 64 -r 100000 -P 1 -n 367647 --precision 3 --csv
