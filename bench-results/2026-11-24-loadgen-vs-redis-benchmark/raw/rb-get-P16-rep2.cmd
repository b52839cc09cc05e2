redis-benchmark -p 45673 -t get -c 50 -d 64 -r 100000 -P 16 -n 1787310 --precision 3 --csv
