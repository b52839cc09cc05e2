import json, sys, glob, os
d = sys.argv[1]
print("| fio test | phase | IOPS | write clat p50 us | write clat p99 us | fdatasync p50 us | fdatasync p99 us | mean us per op (1/IOPS) |")
print("|---|---|---|---|---|---|---|---|")
names = ["4k-overwrite-fdatasync-uring", "4k-overwrite-fdatasync-sync",
         "4k-append-odirect+fdatasync-uring", "64k-append-odirect+fdatasync-uring"]
for name in names:
    for phase in ["before", "after", "extra"]:
        f = os.path.join(d, f"fio-{name}-{phase}.json")
        if not os.path.exists(f): continue
        j = json.load(open(f))["jobs"][0]
        w = j["write"]
        def pct(block, p):
            try: return block["percentile"][p] / 1e3
            except Exception: return float("nan")
        clat = w.get("clat_ns", {})
        sync = j.get("sync", {}).get("lat_ns", {})
        iops = w["iops"]
        print(f"| {name} | {phase} | {iops:,.0f} | {pct(clat,'50.000000'):.1f} | {pct(clat,'99.000000'):.1f} | "
              f"{pct(sync,'50.000000'):.1f} | {pct(sync,'99.000000'):.1f} | {1e6/iops:.0f} |")
