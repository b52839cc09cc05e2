target/release/klein-bench -p 58323 --mix get -c 50 --value-size 64 -r 100000 -P 16 --duration 10 --quiet --json json/kb-get-P16-rep3.json
