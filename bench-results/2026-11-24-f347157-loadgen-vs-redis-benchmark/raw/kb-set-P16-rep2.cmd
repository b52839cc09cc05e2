target/release/klein-bench -p 58323 --mix set -c 50 --value-size 64 -r 100000 -P 16 --duration 10 --quiet --json json/kb-set-P16-rep2.json
