#!/usr/bin/env python3
"""Remote-write ingest and storage, Strata vs the Debian `prometheus`, same data, one run.

Runs the shared harness (../shared/bench: dataset.py, remote_write.py, common.py) — it does
not copy it — against each server in turn (A B A B with --repeat 2), and reports per server:
remote-write samples/s, server CPU µs/sample, peak RSS, RSS per series after load, data
directory bytes/sample after a graceful stop; then Strata/Prometheus ratios.

    python3 benches/rw_storage.py --strata $CARGO_TARGET_DIR/release/strata [--series 10000 --hours 24]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True, help="path of the strata binary (release build)")
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--servers", default="strata,prometheus")
    ap.add_argument("--port", type=int, default=29090)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.bench_dir))
    import common  # noqa: E402  (the shared harness)
    import dataset  # noqa: E402
    import remote_write  # noqa: E402

    cmds = {
        "strata": args.strata + " --config.file={config} --storage.tsdb.path={data_dir} "
                                "--web.listen-address=127.0.0.1:{port} --storage.tsdb.retention.time=30d",
        "prometheus": common.PROMETHEUS_CMD,
    }
    spec = dataset.Spec(args.series, args.hours, 15, 1, None)
    results = {name: [] for name in args.servers.split(",")}
    for rep in range(args.repeat):
        for name in results:
            if name == "prometheus" and not shutil.which("prometheus"):
                print("skipping prometheus: not installed (apt-get install prometheus)")
                continue
            work = tempfile.mkdtemp(prefix="strata-rwbench-")
            data_dir = os.path.join(work, "data")
            config = os.path.join(work, "prometheus.yml")
            with open(config, "w") as f:
                f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
            srv = common.Server(cmds[name], common.DEFAULT_BASE_URL, data_dir, args.port, config,
                                os.path.join(work, "server.log"), "/-/ready")
            try:
                srv.start()
                srv.wait_ready()
                srv.start_sampling(1.0)
                s0 = srv.sample()
                st = remote_write.load_dataset(spec, srv.base_url + "/api/v1/write", 2, "20m", 10000, "auto",
                                               pregenerate=True)
                s1 = srv.sample()
                idle = common.wait_idle(srv, timeout=300)
                rss_after = srv.sample()["rss_bytes"]
            finally:
                srv.stop()
            usage = common.du(data_dir)
            r = {
                "samples_per_s": st["samples_per_s"],
                "errors": st["errors"],
                "cpu_us_per_sample": 1e6 * (s1["cpu_s"] - s0["cpu_s"]) / max(1, st["samples_ok"]),
                "settle_s": idle,
                "rss_after_load_bytes": rss_after,
                "rss_per_series_bytes": rss_after / spec.series,
                "peak_rss_bytes": srv.peak_rss(),
                "data_dir_bytes_per_sample": usage["apparent_bytes"] / spec.samples,
            }
            if name == "strata":
                stored = 0
                blocks = os.path.join(data_dir, "blocks")
                for d in os.listdir(blocks) if os.path.isdir(blocks) else []:
                    with open(os.path.join(blocks, d, "meta.json")) as f:
                        stored += json.load(f)["stats"]["numSamples"]
                r["stored_samples"] = stored
                r["stored_complete"] = stored == spec.samples
            results[name].append(r)
            print(name, json.dumps(r), flush=True)
            shutil.rmtree(work, ignore_errors=True)
            time.sleep(3)

    def med(name, key):
        v = [r[key] for r in results.get(name, []) if r.get(key) is not None]
        return statistics.median(v) if v else None

    print("\n== remote write + storage: %d series x %.0fh = %d samples" % (spec.series, args.hours, spec.samples))
    keys = ["samples_per_s", "cpu_us_per_sample", "rss_per_series_bytes", "peak_rss_bytes", "data_dir_bytes_per_sample"]
    print("%-28s %16s %16s %10s" % ("figure", "strata", "prometheus", "ratio"))
    for k in keys:
        a, b = med("strata", k), med("prometheus", k)
        ratio = (a / b) if (a is not None and b) else None
        print("%-28s %16s %16s %10s" % (k, "%.4g" % a if a is not None else "-", "%.4g" % b if b is not None else "-",
                                        "%.3f" % ratio if ratio is not None else "-"))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"spec": spec.as_dict(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
