#!/usr/bin/env python3
"""A whole-range aggregate three ways on the same data, one run: SQL on Strata, the
equivalent PromQL on Strata, and PromQL on the Debian `prometheus`.

The dataset is the shared harness's (../shared/bench/dataset.py; not copied): N series of
the bench families over --hours (default 24h, the longest range the bench data has) at
15 s, remote-written in time order into each server (Prometheus with its remote-write
receiver). Each aggregate is checked to give the same numbers on all three, then timed
--runs times (median). Ratios are against PromQL on Prometheus.

    python3 benches/sql.py --strata $CARGO_TARGET_DIR/release/strata [--series 2000] [--hours 24]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, PromQL, SQL): the same numbers by job over the whole range [start, end].
QUERIES = [
    ("sum_by_job", "sum by (job) (sum_over_time(node_memory_bytes[{range}]))",
     "SELECT job, sum(value) AS v FROM node_memory_bytes WHERE timestamp > to_timestamp_millis({lo}) "
     "AND timestamp <= to_timestamp_millis({end}) GROUP BY job"),
    ("count_by_job", "sum by (job) (count_over_time(http_requests_total[{range}]))",
     "SELECT job, count(*) AS v FROM http_requests_total WHERE timestamp > to_timestamp_millis({lo}) "
     "AND timestamp <= to_timestamp_millis({end}) GROUP BY job"),
    ("max_by_job", "max by (job) (max_over_time(node_memory_bytes[{range}]))",
     "SELECT job, max(value) AS v FROM node_memory_bytes WHERE timestamp > to_timestamp_millis({lo}) "
     "AND timestamp <= to_timestamp_millis({end}) GROUP BY job"),
]


def get_json(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def promql(base, q, t):
    j = get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": t}))
    return {r["metric"].get("job"): float(r["value"][1]) for r in j["data"]["result"]}


def sql(base, q):
    j = get_json(base + "/api/v1/sql", data=q.encode(), headers={"Content-Type": "application/sql"})
    return {r["job"]: float(r["v"]) for r in j["data"]["rows"]}


def timed(fn, runs):
    out, times = None, []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def same(a, b):
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(a[k])) for k in a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--end", type=int, default=1795593600, help="pinned unix end of the dataset")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.bench_dir))
    import common  # noqa: E402  (the shared harness)
    import dataset  # noqa: E402
    import remote_write  # noqa: E402

    spec = dataset.Spec(series=args.series, hours=args.hours, step_s=15, end_s=args.end)
    print("dataset: %d series x %d steps = %d samples, %s .. %s" % (
        spec.series, spec.steps, spec.samples, spec.start_ms, spec.end_ms), flush=True)
    work = tempfile.mkdtemp(prefix="strata-sqlbench-")
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 15s\n")
    servers = {
        "strata": args.strata + " --config.file={config} --storage.tsdb.path={data_dir}"
                  " --web.listen-address=127.0.0.1:{port} --storage.tsdb.retention.time=3650d",
    }
    if shutil.which("prometheus"):
        servers["prometheus"] = ("prometheus --config.file={config} --storage.tsdb.path={data_dir}"
                                 " --web.listen-address=127.0.0.1:{port} --web.enable-remote-write-receiver"
                                 " --storage.tsdb.retention.time=3650d")
    else:
        print("prometheus not installed: Strata only")
    end_s = spec.end_ms / 1000.0
    rng = "%ds" % int(args.hours * 3600)
    lo = spec.end_ms - int(args.hours * 3600 * 1000)
    results = {}
    port = 29150
    for name, cmd in servers.items():
        data = os.path.join(work, name)
        srv = common.Server(cmd, "http://127.0.0.1:{port}", data, port, cfg, os.path.join(work, name + ".log"))
        srv.start()
        try:
            srv.wait_ready()
            base = "http://127.0.0.1:%d" % port
            st = remote_write.load_dataset(spec, base + "/api/v1/write", progress=False)
            print("%s: loaded %d samples in %.1fs" % (name, st.get("samples_ok", 0), st["send_wall_s"]), flush=True)
            common.wait_idle(srv)
            for qname, pq, sq in QUERIES:
                p = pq.format(range=rng)
                res, t = timed(lambda: promql(base, p, end_s), args.runs)
                results[(name, "promql", qname)] = (res, t)
                if name == "strata":
                    s = sq.format(lo=lo, end=spec.end_ms)
                    res, t = timed(lambda: sql(base, s), args.runs)
                    results[(name, "sql", qname)] = (res, t)
        finally:
            srv.stop()
        port += 1
    print()
    print("%-14s %12s %12s %12s %10s %10s %6s" % ("query", "prom PromQL", "strata PromQL", "strata SQL",
                                                 "PromQL x", "SQL x", "same"))
    for qname, _, _ in QUERIES:
        prom = results.get(("prometheus", "promql", qname))
        sp = results[("strata", "promql", qname)]
        ss = results[("strata", "sql", qname)]
        ok = same(sp[0], ss[0]) and (prom is None or same(prom[0], sp[0]))
        if prom:
            print("%-14s %10.1fms %11.1fms %10.1fms %9.2fx %9.2fx %6s" % (
                qname, prom[1] * 1e3, sp[1] * 1e3, ss[1] * 1e3, sp[1] / prom[1], ss[1] / prom[1], ok))
        else:
            print("%-14s %12s %11.1fms %10.1fms %10s %10s %6s" % (qname, "-", sp[1] * 1e3, ss[1] * 1e3, "-", "-", ok))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
