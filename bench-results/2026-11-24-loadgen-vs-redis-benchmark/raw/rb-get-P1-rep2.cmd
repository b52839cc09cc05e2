redis-benchmark -p 45673 -t get -c 50 -d 64 -r 100000 -P 1 -n 185873 --precision 3 --csv
