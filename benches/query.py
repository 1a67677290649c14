#!/usr/bin/env python3
"""PromQL query latency and storage, Strata vs the Debian `prometheus` or
`victoria-metrics`, same data.

Runs the shared harness's query_bench.py (../shared/bench; not copied) for each server in
turn, A B A B with --repeat 2: Prometheus loads the dataset with `--load backfill` (promtool
blocks, as it would be after its own compaction), VictoriaMetrics and Strata with `--load
remote-write` (VictoriaMetrics with the command line of the harness's BASELINE.md). The
dataset end is pinned so all store identical data. Then compare.py prints, per dashboard
query, both medians, the Strata/other ratio and whether the results are the same (series,
points, value checksum), plus the geometric mean, load speed, bytes/sample, peak RSS and
full scan.

    python3 benches/query.py --strata $CARGO_TARGET_DIR/release/strata [--series 10000] [--repeat 1]
    python3 benches/query.py --strata ... --servers victoriametrics,strata --repeat 2   # V S V S
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True, help="path of the strata binary (release build)")
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--end", type=int, default=1795593600, help="pinned unix end of the dataset")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--servers", default="prometheus,strata")
    args = ap.parse_args()
    bench = os.path.abspath(args.bench_dir)
    out = args.out_dir or tempfile.mkdtemp(prefix="strata-querybench-")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, BENCH_OUT_DIR=out)
    strata_cmd = (os.path.abspath(args.strata) + " --config.file={config} --storage.tsdb.path={data_dir}"
                  " --web.listen-address=127.0.0.1:{port} --storage.tsdb.retention.time=30d")
    vm_cmd = ("victoria-metrics -storageDataPath={data_dir} -httpListenAddr=127.0.0.1:{port}"
              " -retentionPeriod=100y -promscrape.config={config} -promscrape.config.strictParse=false"
              " -search.latencyOffset=0s -search.disableCache -dedup.minScrapeInterval=0s")
    results = {}
    for rep in range(args.repeat):
        for name in args.servers.split(","):
            if name == "prometheus" and not (shutil.which("prometheus") and shutil.which("promtool")):
                print("skipping prometheus: not installed (apt-get install prometheus)")
                continue
            path = os.path.join(out, "%s-%d.json" % (name, rep))
            cmd = [sys.executable, os.path.join(bench, "query_bench.py"), "--label", name,
                   "--series", str(args.series), "--end", str(args.end), "--runs", str(args.runs),
                   "--out", path]
            if name == "victoriametrics" and not shutil.which("victoria-metrics"):
                print("skipping victoriametrics: not installed (apt-get install victoria-metrics)")
                continue
            if name == "prometheus":
                cmd += ["--load", "backfill"]
            elif name == "victoriametrics":
                cmd += ["--load", "remote-write", "--server-cmd", vm_cmd, "--ready-path", "/health"]
            else:
                cmd += ["--load", "remote-write", "--server-cmd", strata_cmd]
            print("==", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, env=env, cwd=bench)
            results.setdefault(name, []).append(path)
    for other in ("prometheus", "victoriametrics"):
        if other in results and "strata" in results:
            for a, b in zip(results[other], results["strata"]):
                subprocess.run([sys.executable, os.path.join(bench, "compare.py"), a, b], check=True)


if __name__ == "__main__":
    main()
