target/release/klein-bench -p 58323 --mix set -c 50 --value-size 64 -r 100000 -P 1 --duration 10 --quiet --json json/kb-set-P1-rep3.json
